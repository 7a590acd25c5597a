#!/usr/bin/env bash
# t-git-identity: commands in the box get user.name and user.email as the host's git reads them
# in the work tree (GIT_AUTHOR_NAME/EMAIL, GIT_COMMITTER_NAME/EMAIL), read at the box's start:
# the user's global config, the repository's own over it; the profile's [env] wins; a value with
# a control character is not passed (UTF-8 is); without an identity on the host nothing is set.
# Found in use: `git commit` in the box failed ("unable to auto-detect email address") where
# the host's git committed.  Three boots.
. "$(dirname "$0")/lib.sh"

import_image
export HOME="$TEST_TMP/home"
mkdir -p "$HOME"
git config --global user.name "Ada Lövelace" || fail "git config --global"
git config --global user.email ada@example.invalid || fail "git config --global"
R="$TEST_TMP/repos/proj"
mkdir -p "$R" || fail "mkdir $R"
git -C "$R" init -q || fail "git init $R"
cd "$R" || fail "cd $R"
IDENT='echo "$GIT_AUTHOR_NAME|$GIT_AUTHOR_EMAIL|$GIT_COMMITTER_NAME|$GIT_COMMITTER_EMAIL"'

# the user's global identity
ok dbx exec -- sh -c "$IDENT"
assert_eq "Ada Lövelace|ada@example.invalid|Ada Lövelace|ada@example.invalid" "$OUT" "global identity"

# the repository's own email over the global one (the name stays global's); the profile's
# [env] over both; read at the start
git -C "$R" config user.email ada@work.invalid || fail "git config (repo)"
write_profile "$R" $'[env]\nGIT_COMMITTER_NAME = Box Bot'
ok dbx restart
ok dbx exec -- sh -c "$IDENT"
assert_eq "Ada Lövelace|ada@work.invalid|Box Bot|ada@work.invalid" "$OUT" "repo's email, [env]'s committer name"

# a name with a control character is not passed, nor anything without an identity on the host
rm -f "$R/devbox.ini"
git config --global user.name "$(printf 'Ada\tL')" || fail "git config --global (tab)"
git -C "$R" config --unset user.email || fail "git config --unset"
git config --global --unset user.email || fail "git config --global --unset"
ok dbx restart
ok dbx exec -- sh -c "$IDENT; env | grep -E '^GIT_(AUTHOR|COMMITTER)' || true"
assert_eq '|||' "$OUT" "no identity passed"
