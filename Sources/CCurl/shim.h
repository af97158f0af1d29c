// curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic, so
// Swift cannot call them. One typed wrapper per argument type keeps a long from
// ever reaching a pointer option (CurlBridge wraps these in typed options).
// On Linux, also the epoll/eventfd helpers the worker waits with.
#ifndef CCURL_SHIM_H
#define CCURL_SHIM_H
#include <curl/curl.h>

static inline CURLcode ccurl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_ptr(CURL *h, CURLoption o, const void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode ccurl_setopt_fn(CURL *h, CURLoption o, curl_write_callback f) { return curl_easy_setopt(h, o, f); }
static inline CURLcode ccurl_setopt_read_fn(CURL *h, CURLoption o, curl_read_callback f) { return curl_easy_setopt(h, o, f); }
static inline CURLcode ccurl_setopt_sockopt_fn(CURL *h, CURLoption o, curl_sockopt_callback f) { return curl_easy_setopt(h, o, f); }

static inline CURLcode ccurl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode ccurl_getinfo_ptr(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode ccurl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode ccurl_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode ccurl_getinfo_socket(CURL *h, CURLINFO i, curl_socket_t *v) { return curl_easy_getinfo(h, i, v); }

// A tunnel's own connection cache: a share object that shares connections (see CurlWorker+Tunnel.swift).
static inline CURLSHcode ccurl_share_connections(CURLSH *s) { return curl_share_setopt(s, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT); }

static inline CURLMcode ccurl_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode ccurl_multi_setopt_ptr(CURLM *m, CURLMoption o, const void *v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode ccurl_multi_setopt_socket_fn(CURLM *m, CURLMoption o, curl_socket_callback f) { return curl_multi_setopt(m, o, f); }
static inline CURLMcode ccurl_multi_setopt_timer_fn(CURLM *m, CURLMoption o, curl_multi_timer_callback f) { return curl_multi_setopt(m, o, f); }
static inline CURLcode ccurl_setopt_closesocket_fn(CURL *h, CURLoption o, curl_closesocket_callback f) { return curl_easy_setopt(h, o, f); }

// Macros built from expressions do not always reach Swift; these do.
static inline CURLcode ccurl_global_init_default(void) { return curl_global_init(CURL_GLOBAL_DEFAULT); }
static const int ccurl_pause_recv = CURLPAUSE_RECV;
static const int ccurl_pause_send = CURLPAUSE_SEND;
static const int ccurl_pause_cont = CURLPAUSE_CONT;
static const size_t ccurl_writefunc_pause = CURL_WRITEFUNC_PAUSE;
static const size_t ccurl_readfunc_pause = CURL_READFUNC_PAUSE;
static const curl_off_t ccurl_off_unknown = -1;
static const curl_socket_t ccurl_socket_timeout = CURL_SOCKET_TIMEOUT;

// CURLMsg.data is a union; Swift sees it, but a named accessor reads better.
static inline CURLcode ccurl_msg_result(const CURLMsg *m) { return m->data.result; }

#ifdef __linux__
// The worker's wait (CurlSocketPoller): an epoll set of curl's sockets plus an eventfd.
// `struct epoll_event` is packed on x86_64, so Swift never touches it: these unpack it.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <errno.h>

static const uint32_t ccurl_epollin = EPOLLIN;
static const uint32_t ccurl_epollout = EPOLLOUT;
static const uint32_t ccurl_epollerr = EPOLLERR;
static const uint32_t ccurl_epollhup = EPOLLHUP;

static inline int ccurl_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }
static inline int ccurl_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/// EPOLL_CTL_ADD, or MOD when `registered`; falls back to the other on EEXIST/ENOENT.
static inline int ccurl_epoll_set(int ep, int fd, uint32_t events, int registered) {
    struct epoll_event ev = { .events = events, .data = { .fd = fd } };
    int op = registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ep, op, fd, &ev) == 0) return 0;
    if (errno != (registered ? ENOENT : EEXIST)) return -1;
    return epoll_ctl(ep, registered ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev);
}

static inline int ccurl_epoll_del(int ep, int fd) {
    struct epoll_event ev = { 0 };
    return epoll_ctl(ep, EPOLL_CTL_DEL, fd, &ev);
}

/// epoll_wait into two plain arrays (at most 64 events); EINTR counts as no event.
static inline int ccurl_epoll_wait(int ep, int *fds, uint32_t *events, int max, int timeout) {
    struct epoll_event ready[64];
    if (max > 64) max = 64;
    int n = epoll_wait(ep, ready, max, timeout);
    if (n < 0) return errno == EINTR ? 0 : -1;
    for (int i = 0; i < n; i++) { fds[i] = ready[i].data.fd; events[i] = ready[i].events; }
    return n;
}

/// Shuts the write side of a tunnel's socket (SHUT_WR is an enum constant Swift sees as Int).
#include <sys/socket.h>
static inline int ccurl_shutdown_write(int fd) { return shutdown(fd, SHUT_WR); }

/// Names the calling thread (at most 15 bytes), so `top -H` shows what it is.
/// prctl is variadic and pthread_setname_np needs _GNU_SOURCE: neither reaches Swift.
#include <sys/prctl.h>
static inline int ccurl_name_this_thread(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }

/// Gives the heap's free pages back to the kernel (glibc's malloc.h is not in Swift's Glibc module).
#include <malloc.h>
static inline void ccurl_trim_heap(void) { malloc_trim(0); }
#endif

#endif
