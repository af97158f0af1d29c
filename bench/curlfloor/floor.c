// The libcurl floor: what one proxied small GET costs libcurl alone, without the proxy around
// it. One reused easy handle (connection kept alive, as the proxy's are), the same options the
// proxy sets and the same request headers, N sequential GETs; prints CPU µs per request.
//
//   cc -O2 floor.c -lcurl -o floor && taskset -c 0 ./floor http://127.0.0.1:18080/api/small 20000
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static size_t discard(char *data, size_t size, size_t count, void *context) {
    (void)data; (void)context;
    return size * count;
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: floor URL COUNT [multi]\n"); return 2; }
    const char *url = argv[1];
    long count = atol(argv[2]);
    int useMulti = argc > 3;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = NULL;
    // What the proxy sends upstream for the bench's small GET.
    headers = curl_slist_append(headers, "Host: 127.0.0.1:18080");
    headers = curl_slist_append(headers, "Origin: https://app.example.com");
    headers = curl_slist_append(headers, "X-Forwarded-For: 127.0.0.1");
    headers = curl_slist_append(headers, "X-Forwarded-Proto: http");
    headers = curl_slist_append(headers, "X-Forwarded-Host: 127.0.0.1:18084");
    headers = curl_slist_append(headers, "Accept:");
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(easy, CURLOPT_PROXY, "");
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 131072L);
    CURLM *multi = useMulti ? curl_multi_init() : NULL;
    double start = cpu_seconds();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < count; i++) {
        if (multi) {
            curl_multi_add_handle(multi, easy);
            int running = 1;
            while (running) {
                curl_multi_perform(multi, &running);
                if (running) curl_multi_poll(multi, NULL, 0, 1000, NULL);
            }
            curl_multi_remove_handle(multi, easy);
        } else if (curl_easy_perform(easy) != CURLE_OK) {
            fprintf(stderr, "request %ld failed\n", i);
            return 1;
        }
    }
    double cpu = cpu_seconds() - start;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"requests\":%ld,\"cpu_us_per_request\":%.2f,\"wall_us_per_request\":%.2f,\"interface\":\"%s\"}\n",
           count, cpu * 1e6 / count, wall * 1e6 / count, multi ? "multi" : "easy");
    return 0;
}
