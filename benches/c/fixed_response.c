/* The fixed-response workload of the benchmark suite, on the C ABI: every data event is
 * answered with one 89-byte HTTP response (no parsing) and re-arms a 30 s idle timeout, as a
 * minimal uWebSockets-style server does.
 *
 *     fixed_response [--port P] [--requests N]
 *
 * Arguments, the --requests exit and its counts: see bench.h. */
#include "bench.h"

static const char RESPONSE[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\nServer: us\r\n\r\nHello World!";
_Static_assert(sizeof(RESPONSE) - 1 == 89, "the response is 89 bytes");

static struct us_socket_t *on_open(struct us_socket_t *s, int is_client, char *ip, int ip_len) {
    (void)is_client, (void)ip, (void)ip_len;
    us_socket_timeout(0, s, 30);
    return s;
}

static struct us_socket_t *on_data(struct us_socket_t *s, char *data, int len) {
    (void)data;
    bench_count(len);
    /* Nothing queues the rest: a client that does not read its answers goes. */
    if (us_socket_write(0, s, RESPONSE, (int)sizeof(RESPONSE) - 1, 0) < (int)sizeof(RESPONSE) - 1)
        s = us_socket_close(0, s, 0, NULL);
    else
        us_socket_timeout(0, s, 30);
    bench_spend();
    return s;
}

int main(int argc, char **argv) {
    struct bench_callbacks cbs = {.on_open = on_open, .on_data = on_data, .on_timeout = bench_close};
    return bench_serve("fixed_response", argc, argv, cbs);
}
