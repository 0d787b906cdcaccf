/* I/O errors on demand, for the storage fault tests: loaded with LD_PRELOAD, it makes
 * write, pwrite, pwrite64, fsync and fdatasync fail with EIO on files under $EIO_DIR
 * while the file $EIO_SWITCH exists. Everything else goes to the C library. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int failing(int fd) {
    const char *dir = getenv("EIO_DIR"), *on = getenv("EIO_SWITCH");
    if (!dir || !on || access(on, F_OK) != 0) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strncmp(path, dir, strlen(dir)) == 0;
}

#define WRAP(ret, name, params, args, fd)                 \
    ret name params {                                     \
        static ret(*real) params;                         \
        if (!real) real = dlsym(RTLD_NEXT, #name);        \
        if (failing(fd)) {                                \
            errno = EIO;                                  \
            return -1;                                    \
        }                                                 \
        return real args;                                 \
    }

WRAP(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n), fd)
WRAP(ssize_t, pwrite, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o), fd)
WRAP(ssize_t, pwrite64, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o), fd)
WRAP(int, fsync, (int fd), (fd), fd)
WRAP(int, fdatasync, (int fd), (fd), fd)
