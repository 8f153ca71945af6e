/* A C peer for the System V tests: meets the shmkit CLI in one segment.
 *
 *   sysv_cli_peer ftok PATH PROJ   opens the segment ftok(PATH, PROJ) names, waits until the
 *                              u32 at offset 0 is 1, checks the C string at 8 is
 *                              "from shell", writes "from c" at 64, sets the word to 2.
 *   sysv_cli_peer private          creates an IPC_PRIVATE segment of 4096 bytes, prints its
 *                              id, writes "hello from c" at 8, sets the word to 1, waits
 *                              until it is 2, checks "reply from shell" at 64, removes it.
 *
 * Waiting polls the word every 100 us with a 10 s deadline; exit codes name the step
 * that failed. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int wait_word(_Atomic unsigned *w, unsigned want) {
    double end = now() + 10.0;
    while (atomic_load_explicit(w, memory_order_acquire) != want) {
        if (now() > end) return -1;
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "ftok") == 0) {
        key_t key = ftok(argv[2], atoi(argv[3]));
        if (key == -1) { perror("ftok"); return 10; }
        int id = shmget(key, 0, 0);
        if (id < 0) { perror("shmget"); return 11; }
        char *p = shmat(id, NULL, 0);
        if (p == (void *)-1) { perror("shmat"); return 12; }
        _Atomic unsigned *word = (_Atomic unsigned *)p;
        if (wait_word(word, 1)) { fprintf(stderr, "timed out waiting for 1\n"); return 13; }
        if (strcmp(p + 8, "from shell") != 0) { fprintf(stderr, "got '%.20s'\n", p + 8); return 14; }
        strcpy(p + 64, "from c");
        atomic_store_explicit(word, 2, memory_order_release);
        shmdt(p);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "private") == 0) {
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        if (id < 0) { perror("shmget"); return 20; }
        char *p = shmat(id, NULL, 0);
        if (p == (void *)-1) { perror("shmat"); shmctl(id, IPC_RMID, NULL); return 21; }
        _Atomic unsigned *word = (_Atomic unsigned *)p;
        strcpy(p + 8, "hello from c");
        atomic_store_explicit(word, 1, memory_order_release);
        printf("%d\n", id);
        fflush(stdout);
        int rc = 0;
        if (wait_word(word, 2)) { fprintf(stderr, "timed out waiting for 2\n"); rc = 22; }
        else if (strcmp(p + 64, "reply from shell") != 0) { fprintf(stderr, "got '%.20s'\n", p + 64); rc = 23; }
        shmdt(p);
        shmctl(id, IPC_RMID, NULL);
        return rc;
    }
    fprintf(stderr, "usage: sysv_cli_peer ftok PATH PROJ | sysv_cli_peer private\n");
    return 2;
}
