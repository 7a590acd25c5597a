/* bench/trivial-init.c: the boot floor: an init that powers the VM off at once.  Its
 * boot-to-poweroff time is what the kernel and QEMU cost before devbox does anything. */
#include <sys/reboot.h>
#include <unistd.h>

int main(void) {
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
}
