/* The echo workload of the benchmark suite, on the C ABI: every data event is written back
 * as it came (the load sends 12-byte messages, one in flight per connection).
 *
 *     echo [--port P] [--requests N]
 *
 * Arguments, the --requests exit and its counts: see bench.h. */
#include "bench.h"

static struct us_socket_t *on_data(struct us_socket_t *s, char *data, int len) {
    bench_count(len);
    s = bench_write_all(s, data, len);
    bench_spend();
    return s;
}

int main(int argc, char **argv) {
    struct bench_callbacks cbs = {.on_data = on_data};
    return bench_serve("echo", argc, argv, cbs);
}
