/* tests/e2e/watch-probe.c: a tiny inotify watcher for t-watch, built static by the test and run
 * in the box from the share.  `watch-probe DIR SECONDS`: prints "ready" once DIR is watched,
 * then one line per event until SECONDS pass:
 *   ev MASKNAMES NAME content=LAST-LINE-OF-DIR/NAME
 * (content only for a regular file).  Open and access events are not asked for: the probe's
 * own reads would report themselves.
 *
 * `watch-probe -f FILE SECONDS` watches one file as chokidar and TypeScript do: its events
 * come with NAME "." and the file's last line; when the kernel drops the watch (IGNORED, after
 * DELETE_SELF: the file was deleted or renamed over), it watches the path again as soon as it
 * names a file and prints "rewatched content=LAST-LINE". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const struct {
    unsigned bit;
    const char *name;
} names[] = {
    {IN_MODIFY, "MODIFY"},         {IN_ATTRIB, "ATTRIB"},           {IN_CLOSE_WRITE, "CLOSE_WRITE"},
    {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"},       {IN_CREATE, "CREATE"},
    {IN_DELETE, "DELETE"},         {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
    {IN_ISDIR, "ISDIR"},           {IN_Q_OVERFLOW, "OVERFLOW"},     {IN_IGNORED, "IGNORED"}};

static void last_line(const char *dir, const char *name, char *out, size_t cap) {
    char path[4096], buf[65536];
    out[0] = '\0';
    snprintf(path, sizeof(path), "%s%s%s", dir, name[0] ? "/" : "", name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof(buf) - 1) : -1;
    close(fd);
    if (n <= 0) return;
    while (n > 0 && buf[n - 1] == '\n')
        n--;
    buf[n] = '\0';
    char *l = strrchr(buf, '\n');
    snprintf(out, cap, "%.200s", l ? l + 1 : buf);
}

#define MASK (IN_ALL_EVENTS & ~(IN_ACCESS | IN_OPEN | IN_CLOSE_NOWRITE))

int main(int argc, char **argv) {
    bool file = argc == 4 && strcmp(argv[1], "-f") == 0;
    if (file) argv++, argc--;
    if (argc != 3) return 2;
    int fd = inotify_init1(IN_CLOEXEC);
    if (fd < 0 || inotify_add_watch(fd, argv[1], MASK) < 0) {
        perror("inotify");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    time_t end = time(NULL) + atoi(argv[2]);
    char buf[65536] __attribute__((aligned(8)));
    bool lost = false; /* -f: the file's watch was dropped, not yet added again */
    while (time(NULL) < end) {
        if (lost && inotify_add_watch(fd, argv[1], MASK) >= 0) {
            char content[256];
            last_line(argv[1], "", content, sizeof(content));
            printf("rewatched content=%s\n", content);
            fflush(stdout);
            lost = false;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, lost ? 50 : 200) <= 0) continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        for (ssize_t off = 0; off < n;) {
            struct inotify_event *ev = (struct inotify_event *)(buf + off);
            char masks[256] = "", content[256];
            for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
                if (ev->mask & names[i].bit)
                    snprintf(masks + strlen(masks), sizeof(masks) - strlen(masks), "%s%s",
                             masks[0] ? "," : "", names[i].name);
            const char *name = ev->len ? ev->name : ".";
            last_line(argv[1], file ? "" : name, content, sizeof(content));
            if (file && (ev->mask & IN_IGNORED)) lost = true;
            printf("ev %s %s content=%s\n", masks, name, content);
            fflush(stdout);
            off += (ssize_t)sizeof(*ev) + ev->len;
        }
    }
    return 0;
}
