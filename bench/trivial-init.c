/* bench/trivial-init.c: the boot floor: an init that ends the VM at once.  Its boot-to-exit
 * time is what the kernel and QEMU cost before devbox does anything.
 * Never run it on the host (as root it would power the host off). */
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void) {
    if (getpid() != 1) return 1;
    /* As devbox-init does: a kernel without ACPI (the devbox kernel) cannot power off
     * (RB_POWER_OFF would halt the vCPU and leave QEMU running); a reset ends QEMU as well,
     * since devbox runs it with -no-reboot. */
    mkdir("/sys", 0755);
    int acpi =
        mount("sysfs", "/sys", "sysfs", 0, NULL) == 0 && access("/sys/firmware/acpi", F_OK) == 0;
    reboot(acpi ? RB_POWER_OFF : RB_AUTOBOOT);
    for (;;)
        pause();
}
