/* The latency floor of the serving benchmark: an HTTP server that does no work.
 *
 * One thread, epoll, non-blocking sockets with TCP_NODELAY (as Eddy's HTTP threads). Every
 * read from a connection is taken to be one whole request (true of wrk's small requests,
 * one at a time per connection) and answered with a fixed response of the size of a
 * single-key pull query's. Whatever latency wrk reports against it is the load tool, the
 * kernel's loopback TCP and the machine's scheduling, with no server work at all.
 *
 *   cc -O2 -o floor_server scripts/bench/floor_server.c && ./floor_server 18111
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 18111;
    int one = 1;
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) || listen(listener, 1024)) {
        perror("floor_server: bind/listen");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    char body[202];
    memset(body, 'x', sizeof body);
    char response[512];
    int len = snprintf(response, sizeof response,
                       "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                       "date: Mon, 23 Nov 2026 00:00:00 GMT\r\n\r\n%.*s",
                       (int)sizeof body, (int)sizeof body, body);
    struct epoll_event events[256];
    char buf[16384];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int c;
                while ((c = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
                continue;
            }
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) {
                close(fd);
                continue;
            }
            if (send(fd, response, len, MSG_NOSIGNAL) < 0) close(fd);
        }
    }
}
