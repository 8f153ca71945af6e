/* A C peer of the POSIX tests, using nothing but shm_open, ftruncate, mmap, munmap:
 *   peer create NAME TEXT    create exclusively (0600), 4096 bytes, write TEXT and a NUL
 *   peer write NAME TEXT     open O_RDWR, write TEXT and a NUL at 0
 *   peer read NAME LEN       open O_RDONLY, print LEN bytes (up to the first NUL)
 *   peer truncate NAME LEN   open O_RDWR, ftruncate to LEN
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(const char *what) { perror(what); return 1; }

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: peer create|write|read|truncate NAME ARG\n"); return 2; }
    const char *cmd = argv[1], *name = argv[2], *arg = argv[3];
    if (strcmp(cmd, "create") == 0 || strcmp(cmd, "write") == 0) {
        int create = strcmp(cmd, "create") == 0;
        int fd = shm_open(name, create ? (O_CREAT | O_EXCL | O_RDWR) : O_RDWR, 0600);
        if (fd < 0) return fail("shm_open");
        if (create && ftruncate(fd, 4096) != 0) return fail("ftruncate");
        struct stat st;
        if (fstat(fd, &st) != 0) return fail("fstat");
        size_t n = strlen(arg);
        if ((size_t)st.st_size < n + 1) { fprintf(stderr, "object too small\n"); return 1; }
        char *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) return fail("mmap");
        memcpy(p, arg, n + 1);
        munmap(p, st.st_size);
        close(fd);
        return 0;
    }
    if (strcmp(cmd, "read") == 0) {
        size_t n = strtoul(arg, NULL, 10);
        int fd = shm_open(name, O_RDONLY, 0);
        if (fd < 0) return fail("shm_open");
        char *p = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) return fail("mmap");
        fwrite(p, 1, strnlen(p, n), stdout);
        munmap(p, n);
        close(fd);
        return 0;
    }
    if (strcmp(cmd, "truncate") == 0) {
        int fd = shm_open(name, O_RDWR, 0);
        if (fd < 0) return fail("shm_open");
        if (ftruncate(fd, strtol(arg, NULL, 10)) != 0) return fail("ftruncate");
        close(fd);
        return 0;
    }
    fprintf(stderr, "unknown command %s\n", cmd);
    return 2;
}
