#!/usr/bin/env bash
# t-net-names: the box's names, as a dev server and its tools use them (found in use: the Debian
# image has no /etc/hosts, so `localhost` did not resolve and Node's server on localhost failed
# with EAI_AGAIN).  In the Debian image, with glibc's resolver: localhost is 127.0.0.1 (only: the
# box has no IPv6 network) and the hostname 127.0.1.1 (getent); a server that listens on
# "localhost" as Node does is reached from the host through a forward, as is one on [::1] (the
# guest tries [::1] after 127.0.0.1 refuses); a forward to nothing is refused.  A line the user adds to
# /etc/hosts stays across a restart, and a hostname changed in the profile takes the old one's
# place, in /etc/hostname as well.  Runs on both kernels (t-net-*).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || skip "curl not installed on the host"
import_debian
R=$(make_repo proj)
cd "$R" || fail "cd $R"
build_probe "$R"

# (ahosts, not ahostsv4: getent asks with AI_ADDRCONFIG, which in a box without a network
# device, whose only IPv4 address is loopback's, returns no IPv4 address at all)
ok dbx exec -- sh -c 'getent ahosts localhost | grep STREAM; getent hosts ip6-localhost; getent hosts "$(hostname)"'
assert_eq "127.0.0.1       STREAM localhost
::1             ip6-localhost ip6-loopback
127.0.1.1       devbox" "$OUT" "localhost, ip6-localhost and the hostname"
# /etc/hostname too (the Debian image's says the name of the machine that built it)
ok dbx exec -- cat /etc/hostname
assert_eq devbox "$OUT" "/etc/hostname in the box"

# a server on "localhost", resolved as Node and Vite do (the first address getaddrinfo gives);
# perl-base is in every Debian image
cat >"$R/serve.pl" <<'EOF'
use Socket qw(:addrinfo SOCK_STREAM SOL_SOCKET SO_REUSEADDR AF_INET6);
$| = 1;
my ($port, $text) = @ARGV;
my ($err, @ai) = getaddrinfo("localhost", $port, {socktype => SOCK_STREAM});
die "getaddrinfo localhost: $err\n" if $err;
my $a = $ai[0];
socket(my $s, $a->{family}, $a->{socktype}, $a->{protocol}) or die "socket: $!\n";
setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
bind($s, $a->{addr}) or die "bind: $!\n";
listen($s, 128) or die "listen: $!\n";
print "listening on ", ($a->{family} == AF_INET6 ? "ipv6" : "ipv4"), "\n";
while (accept(my $c, $s)) {
    my $l;
    while (defined($l = <$c>) && $l ne "\r\n") {}
    print $c "HTTP/1.0 200 OK\r\nContent-Length: " . (length($text) + 1) . "\r\n\r\n$text\n";
    close $c;
}
EOF
dbx exec -- perl "$R/serve.pl" 8010 "from localhost" >"$TEST_TMP/serve.log" 2>&1 &
CLEANUP_HOOKS+=("kill $! 2>/dev/null")
wait_until 120 grep -q "listening" "$TEST_TMP/serve.log" ||
    fail "the localhost server never listened: $(tail -n 3 "$TEST_TMP/serve.log")"
assert_eq "listening on ipv4" "$(head -n 1 "$TEST_TMP/serve.log")" "the address 'localhost' gave the server"
dbx exec -- "$R/probe" serve ::1 8011 "from ::1" >"$TEST_TMP/serve6.log" 2>&1 &
CLEANUP_HOOKS+=("kill $! 2>/dev/null")
wait_until 120 grep -q "listening" "$TEST_TMP/serve6.log" ||
    fail "the [::1] server never listened: $(tail -n 3 "$TEST_TMP/serve6.log")"

P1=$(free_port)
ok dbx port add "$P1:8010"
ok curl -sS --max-time 30 "http://127.0.0.1:$P1/"
assert_eq "from localhost" "$OUT" "the localhost server through a forward"
P2=$(free_port)
ok dbx port add "$P2:8011"
ok curl -sS --max-time 30 "http://127.0.0.1:$P2/"
assert_eq "from ::1" "$OUT" "the [::1] server through a forward"
P3=$(free_port)
ok dbx port add "$P3:8012"
run curl -sS --max-time 30 "http://127.0.0.1:$P3/"
assert_ne 0 "$RC" "a forward to a port nothing listens on, on either address"
ok dbx exec -- curl -sS --max-time 30 http://localhost:8010/
assert_eq "from localhost" "$OUT" "curl localhost in the box"

# the user's own line stays; a new hostname replaces the old one
ok dbx exec --admin -- sh -c 'echo "10.9.8.7 db.internal" >> /etc/hosts'
write_profile "$R" $'[box]\nhostname = web'
ok dbx stop
ok dbx exec -- sh -c 'hostname; cat /etc/hostname; getent hosts db.internal; getent hosts web; getent hosts devbox || echo "devbox: rc $?"'
assert_eq "web
web
10.9.8.7        db.internal
127.0.1.1       web
devbox: rc 2" "$OUT" "names after a restart with a new hostname"
ok dbx exec -- cat /etc/hosts
assert_eq 1 "$(grep -c "^# devbox: this box's names (begin)$" <<<"$OUT")" "one block of ours: $(show "$OUT")"
