/* sandbox/cmd-image.c: `devbox image import ROOTFS.tar NAME`. */
#define _GNU_SOURCE
#include "commands.h"

int cmd_image(struct cmd_ctx *ctx, int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "import") == 0) {
        _cleanup_error_ dbx_error *err = NULL;
        struct dbx_image img = {0};
        if (dbx_image_import(&ctx->paths, argv[2], argv[3], &img, &err) < 0) return cmd_fail(&err);
        printf("%s %s\n", img.name, img.digest);
        dbx_image_clear(&img);
        return 0;
    }
    fprintf(stderr, "usage: devbox image import ROOTFS.tar NAME\n");
    return 125;
}
