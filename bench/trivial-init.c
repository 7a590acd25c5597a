/* bench/trivial-init.c: the boot floor: an init that powers the VM off at once.  Its
 * boot-to-poweroff time is what the kernel and QEMU cost before devbox does anything.
 * Never run it on the host (as root it would power the host off). */
#include <sys/reboot.h>
#include <unistd.h>

int main(void) {
    if (getpid() != 1) return 1;
    reboot(RB_POWER_OFF);
    /* a kernel without a power-off method (no ACPI) returns here or halts: a reset ends QEMU
     * too, since devbox runs it with -no-reboot */
    reboot(RB_AUTOBOOT);
    for (;;)
        pause();
}
