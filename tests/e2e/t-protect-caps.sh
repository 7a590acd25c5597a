#!/usr/bin/env bash
# t-protect-caps: protected paths hold even for guest root with a trusted profile that grants
# file and admin capabilities (dac_override, fowner, sys_admin, ...): writes give EROFS, the
# mount calls that could lift the read-only bind (mount, umount2, mount_setattr, move_mount,
# fsopen/fsmount, unshare(CLONE_NEWNS), pivot_root) stay blocked by seccomp, and file handles
# do not open a protected file for writing through the writable workspace mount.
. "$(dirname "$0")/lib.sh"

import_image
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"
printf '[submodule "lib"]\n\tpath = lib\n\turl = https://example.invalid/lib.git\n' >"$R/.gitmodules"
write_profile "$R" '[security]
capabilities = chown, dac_override, dac_read_search, fowner, fsetid, linux_immutable, sys_admin, sys_ptrace, kill'
write_attacks "$R/attacks.sh"
PROTECTED=(devbox.ini .gitmodules .git/config .git/hooks)
before=$(fingerprint "${PROTECTED[@]}")

expect_rc 125 dbx exec -- true
assert_contains "$ERR" "capability 'sys_admin'" "refusal of the capabilities"
ok dbx trust

ok dbx exec -u root -- ./probe status
caps=$(kv "$OUT" CapEff)
log "CapEff with the trusted capabilities: $caps"
# CAP_DAC_OVERRIDE (1), CAP_FOWNER (3), CAP_SYS_ADMIN (21) must really be there, or this tests nothing
(((16#$caps & (1 << 1)) && (16#$caps & (1 << 3)) && (16#$caps & (1 << 21)))) ||
    fail "CapEff $caps lacks dac_override/fowner/sys_admin with the trusted profile"

for who in default root; do
    u=()
    [ $who = root ] && u=(-u root)
    ok dbx exec "${u[@]}" -- sh attacks.sh
    assert_all_blocked "$OUT" "$who with capabilities"
    ok dbx exec "${u[@]}" -- ./probe sys mount umount2 move_mount fsopen fsmount mount_setattr \
        pivot_root unshare_ns unshare_user setns open_tree fsconfig open_by_handle_at
    sys=$OUT
    for n in mount umount2 move_mount fsopen fsmount mount_setattr pivot_root unshare_ns unshare_user setns \
        open_tree fsconfig open_by_handle_at; do
        assert_kv "$sys" "$n" EPERM "$who with sys_admin: $n"
    done
    for p in devbox.ini .git/config .gitmodules .git/hooks/pre-commit.sample; do
        ok dbx exec "${u[@]}" -- ./probe remount_rw "$p"
        assert_kv "$OUT" remount EPERM "$who: mount(MS_REMOUNT|MS_BIND) of $p"
        assert_kv "$OUT" write_open 'EROFS|EACCES|EPERM' "$who: open $p for writing after the remount attempts"
        if kv "$OUT" mount_setattr >/dev/null; then
            assert_kv "$OUT" mount_setattr 'EPERM|ENOSYS' "$who: mount_setattr on $p"
        fi
        ok dbx exec "${u[@]}" -- ./probe handle_open "$p" .
        assert_not_contains "$OUT" "open_by_handle_at=OK" "$who: open_by_handle_at($p) for writing"
    done
    ok dbx exec "${u[@]}" -- ./probe ptrace1
    assert_match "$(kv "$OUT" ptrace1)" '^(EPERM|EACCES)$' "$who with sys_ptrace: ptrace(PTRACE_ATTACH, 1)"
done
assert_eq "$before" "$(fingerprint "${PROTECTED[@]}")" "protected paths on the host after the attempts with capabilities"
for f in devbox.ini.x ini-hardlink .git.old .git/config.old .git/hooks.old gm.old; do
    [ ! -e "$R/$f" ] || fail "$f exists on the host"
done
