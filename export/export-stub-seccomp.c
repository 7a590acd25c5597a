/* TEMPORARY (deleted when branch oci-seccomp is merged): policy_seccomp_oci_json as that branch
 * declares it in policy/policy.h, so that export links before it lands. */
#define _GNU_SOURCE
#include "../policy/policy.h"

int policy_seccomp_oci_json(enum profile_seccomp mode, char **ret_json, dbx_error **err);
int policy_seccomp_oci_json(enum profile_seccomp mode, char **ret_json, dbx_error **err) {
    if (mode == PROFILE_SECCOMP_UNCONFINED)
        return dbx_error_setx(err, EINVAL, "seccomp 'unconfined' has no filter");
    *ret_json = dbx_xasprintf("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [\n"
                              "    {\n      \"names\": [\"%s\"],\n"
                              "      \"action\": \"SCMP_ACT_ERRNO\"\n    }\n  ]\n}\n",
                              mode == PROFILE_SECCOMP_STRICT ? "chroot" : "kexec_load");
    return 0;
}
