/* The idle-connection workload of the benchmark suite, on the C ABI: accepts connections and
 * holds them, so the suite can read what an idle connection costs in resident memory. The twin
 * of examples/idle_server.rs. Input is dropped; a client's FIN closes its connection.
 *
 *     idle [--port P]
 *
 * Prints "listening on port N" (127.0.0.1 only) and serves until killed (see bench.h). */
#include "bench.h"

static struct us_socket_t *on_data(struct us_socket_t *s, char *data, int len) {
    (void)data, (void)len;
    return s;
}

int main(int argc, char **argv) {
    struct bench_callbacks cbs = {.on_data = on_data};
    return bench_serve("idle", argc, argv, cbs);
}
