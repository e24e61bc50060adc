/* test_connsweep.c — the half-close sweep on real TCP sockets over 127.0.0.1: an edge-triggered
 * epoll that consumed a short read and so missed the FIN (libmicrohttpd 0.9.75's case) reports the
 * socket again after one sweep; live connections are left alone; the registry stays dense and
 * correct under random adds and removes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check_main.h"
#include "connsweep.h"
#include "testutil.h"

/* A connected pair on 127.0.0.1: *cli (client side) and the accepted *srv. */
static void tcp_pair(int *cli, int *srv)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(l, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(l, 4), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sa, &sl), 0);
    *cli = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(*cli, (struct sockaddr *)&sa, sizeof sa), 0);
    *srv = accept(l, NULL, NULL);
    ck_assert_int_ge(*srv, 0);
    close(l);
}

START_TEST(sweep_wakes_an_edge_triggered_epoll_that_missed_the_fin)
{
    struct connsweep cs;
    ck_assert_int_eq(connsweep_init(&cs, 8), 0);
    int cli, srv, live_cli, live_srv;
    tcp_pair(&cli, &srv);
    tcp_pair(&live_cli, &live_srv);
    struct conn *c = connsweep_add(&cs, srv, "127.0.0.1");
    struct conn *live = connsweep_add(&cs, live_srv, "127.0.0.1");
    ck_assert_ptr_nonnull(c);
    ck_assert_str_eq(c->addr, "127.0.0.1");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = srv};
    ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, srv, &ev), 0);
    /* One byte and the FIN together, then one short read, as libmicrohttpd does. */
    ck_assert_int_eq(send(cli, "G", 1, 0), 1);
    close(cli);
    usleep(20000);
    struct epoll_event got;
    ck_assert_int_eq(epoll_wait(ep, &got, 1, 1000), 1);
    char buf[16];
    ck_assert_int_eq(recv(srv, buf, sizeof buf, MSG_DONTWAIT), 1);
    ck_assert_int_eq(epoll_wait(ep, &got, 1, 50), 0); /* the FIN is never reported again */
    ck_assert_uint_eq(connsweep_run(&cs), 1);         /* only the half-closed one */
    ck_assert_int_eq(epoll_wait(ep, &got, 1, 1000), 1);
    ck_assert_int_eq(got.data.fd, srv);
    ck_assert_int_eq(recv(srv, buf, sizeof buf, MSG_DONTWAIT), 0); /* the EOF */
    /* The live connection still works both ways. */
    ck_assert_int_eq(send(live_cli, "ab", 2, 0), 2);
    ck_assert_int_eq(recv(live_srv, buf, sizeof buf, 0), 2);
    ck_assert_int_eq(send(live_srv, "cd", 2, 0), 2);
    ck_assert_int_eq(recv(live_cli, buf, sizeof buf, 0), 2);
    connsweep_remove(&cs, c);
    connsweep_remove(&cs, live);
    ck_assert_uint_eq(cs.n, 0);
    ck_assert_uint_eq(connsweep_run(&cs), 0);
    close(ep);
    close(srv);
    close(live_cli);
    close(live_srv);
    connsweep_fini(&cs);
}
END_TEST

START_TEST(registry_stays_dense_under_random_adds_and_removes)
{
    enum { CAP = 64 };
    struct connsweep cs;
    ck_assert_int_eq(connsweep_init(&cs, CAP), 0);
    struct conn *held[CAP + 8] = {0};
    unsigned nheld = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    for (int step = 0; step < 5000; step++) {
        if (nheld < CAP + 8 && (nheld == 0 || xorshift64(&rng) % 2)) {
            held[nheld] = connsweep_add(&cs, 1000 + step, "x");
            ck_assert_ptr_nonnull(held[nheld]);
            nheld++;
        } else {
            unsigned k = (unsigned)(xorshift64(&rng) % nheld);
            connsweep_remove(&cs, held[k]);
            held[k] = held[--nheld];
        }
        /* Every registered record sits where its idx says; the count is the live ones, capped
         * (records beyond the cap are returned but not swept). */
        unsigned swept = 0;
        for (unsigned i = 0; i < nheld; i++)
            if (held[i]->swept) {
                swept++;
                ck_assert_ptr_eq(cs.v[held[i]->idx], held[i]);
            }
        ck_assert_uint_eq(cs.n, swept);
        ck_assert_uint_le(cs.n, CAP);
    }
    for (unsigned i = 0; i < nheld; i++)
        connsweep_remove(&cs, held[i]);
    ck_assert_uint_eq(cs.n, 0);
    connsweep_remove(NULL, connsweep_add(NULL, 3, "debug")); /* not swept: no registry */
    connsweep_fini(&cs);
    connsweep_fini(&cs); /* accepts a finished one */
}
END_TEST

static Suite *connsweep_suite(void)
{
    Suite *s = suite_create("connsweep");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sweep_wakes_an_edge_triggered_epoll_that_missed_the_fin);
    tcase_add_test(tc, registry_stays_dense_under_random_adds_and_removes);
    suite_add_tcase(s, tc);
    return s;
}

PRIMED_CHECK_MAIN(connsweep_suite)
