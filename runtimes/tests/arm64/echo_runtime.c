/*
 * A minimal Lambda custom runtime in C (a `bootstrap` for provided.al2023), built static for
 * aarch64 by the tests to run as an arm64 function through user-mode emulation. It answers
 * every event with {"machine": <uname -m>, "event": <the event>} over the Runtime API.
 * Plain sockets, one request per connection (Connection: close); no libraries.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MAX (6 * 1024 * 1024 + 4096)

static char host[256];
static int port;

static int connect_api(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect to the Runtime API");
        exit(1);
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            perror("write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Reads the whole response (the server closes after it); returns its length. */
static size_t read_all(int fd, char *buf) {
    size_t len = 0;
    ssize_t r;
    while (len < MAX - 1 && (r = read(fd, buf + len, MAX - 1 - len)) > 0) len += (size_t)r;
    buf[len] = 0;
    close(fd);
    return len;
}

static const char *header(const char *resp, const char *name, char *out, size_t cap) {
    size_t n = strlen(name);
    for (const char *p = strstr(resp, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ') v++;
            size_t i = 0;
            while (v[i] && v[i] != '\r' && i < cap - 1) { out[i] = v[i]; i++; }
            out[i] = 0;
            return out;
        }
    }
    return NULL;
}

int main(void) {
    const char *api = getenv("AWS_LAMBDA_RUNTIME_API");
    if (!api || sscanf(api, "%255[^:]:%d", host, &port) != 2) {
        fprintf(stderr, "AWS_LAMBDA_RUNTIME_API is not host:port\n");
        return 1;
    }
    struct utsname u;
    uname(&u);
    fprintf(stderr, "echo runtime up on %s\n", u.machine);
    char *resp = malloc(MAX), *out = malloc(MAX + 256);
    char id[128], req[512];
    for (;;) {
        int fd = connect_api();
        snprintf(req, sizeof req,
                 "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", api);
        send_all(fd, req, strlen(req));
        read_all(fd, resp);
        const char *body = strstr(resp, "\r\n\r\n");
        if (!body || !header(resp, "Lambda-Runtime-Aws-Request-Id", id, sizeof id)) {
            fprintf(stderr, "bad /next response\n");
            return 1;
        }
        body += 4;
        int n = snprintf(out, MAX + 256, "{\"machine\":\"%s\",\"event\":%s}", u.machine, *body ? body : "null");
        fd = connect_api();
        /* Head and body in one write: two small writes would wait for a delayed ACK (Nagle). */
        int h = snprintf(resp, MAX,
                         "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
                         id, api, n);
        memcpy(resp + h, out, (size_t)n);
        send_all(fd, resp, (size_t)(h + n));
        read_all(fd, resp);
    }
}
