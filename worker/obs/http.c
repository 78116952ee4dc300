/* /metrics, /healthz and /readyz on libmicrohttpd's internal polling thread. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "obs_int.h"

#define CT_TEXT    "text/plain; charset=utf-8"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* A scrape and a couple of probes at a time; more is a misconfiguration. */
/* One client holding idle connections must not starve the probes (kubelet's timeout is 2 s):
 * at most PER_IP_LIMIT of the CONNECTION_LIMIT slots per address, idle ones closed soon. */
#define CONNECTION_LIMIT   256
#define PER_IP_LIMIT       32
#define CONNECTION_TIMEOUT 3 /* s: an idle keep-alive connection is closed */

struct sl_obs_http_s {
        struct MHD_Daemon *mhd;
        sl_obs_http_params_t params;
        int port;
};

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        size_t len;
        (void)cls;
        if (SL_LOG_WARNING > sl_log_level)
                return;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        len = strlen(msg);
        while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
                msg[--len] = '\0';
        sl_log_write(SL_LOG_WARNING, "HTTP", "libmicrohttpd: %s", msg);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status, const char *ctype,
                             char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, mode);
        enum MHD_Result ret;
        if (!resp) {
                if (mode == MHD_RESPMEM_MUST_FREE)
                        free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result reply_static(struct MHD_Connection *conn, unsigned int status,
                                    const char *body)
{
        return reply(conn, status, CT_TEXT, (char *)body, strlen(body), MHD_RESPMEM_PERSISTENT);
}

/* 200 "ok" or 503 with the callback's reason. */
static enum MHD_Result reply_check(struct MHD_Connection *conn, sl_obs_check_cb_t *cb, void *opaque,
                                   const char *what)
{
        char reason[256] = "", body[260];
        if (!cb || cb(opaque, reason, sizeof(reason)))
                return reply_static(conn, MHD_HTTP_OK, "ok\n");
        reason[sizeof(reason) - 1] = '\0';
        snprintf(body, sizeof(body), "%s\n", *reason ? reason : what);
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, CT_TEXT, body, strlen(body),
                     MHD_RESPMEM_MUST_COPY);
}

static enum MHD_Result reply_metrics(struct MHD_Connection *conn, sl_obs_registry_t *reg)
{
        char *text = NULL;
        size_t len = 0;
        if (!reg)
                return reply(conn, MHD_HTTP_OK, CT_METRICS, "", 0, MHD_RESPMEM_PERSISTENT);
        if (sl_obs_registry_render(reg, &text, &len))
                return reply_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return reply(conn, MHD_HTTP_OK, CT_METRICS, text, len, MHD_RESPMEM_MUST_FREE);
}

/* MHD's access handler: every route answers on the first call, before any
 * request body is read (MHD then discards the body). */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
        const sl_obs_http_t *http = cls;
        const sl_obs_http_params_t *p = &http->params;
        int route;
        (void)version;
        (void)upload_data;
        (void)upload_data_size;
        (void)con_cls;

        if (!strcmp(url, "/metrics"))
                route = 0;
        else if (!strcmp(url, "/healthz"))
                route = 1;
        else if (!strcmp(url, "/readyz"))
                route = 2;
        else
                return reply_static(conn, MHD_HTTP_NOT_FOUND, "not found\n");
        if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
                return reply_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        switch (route) {
        case 0:
                return reply_metrics(conn, p->reg);
        case 1:
                return reply_check(conn, p->live_cb, p->opaque, "not live");
        default:
                return reply_check(conn, p->ready_cb, p->opaque, "not ready");
        }
}

/* Bind and listen ourselves so that a failure names the address and errno. */
static sl_err_t listen_on(const char *host, int port, int *fdp, int *portp, char *errstr,
                          size_t errstr_size)
{
        struct addrinfo hints, *res = NULL, *ai;
        char service[8], where[300];
        int err = 0, rc, fd = -1;

        snprintf(where, sizeof(where), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
        snprintf(service, sizeof(service), "%d", port);
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        if ((rc = getaddrinfo(host, service, &hints, &res))) {
                sl_strfmt(errstr, errstr_size, "cannot listen on %s: %s", where, gai_strerror(rc));
                return SL_ERR_IO;
        }
        for (ai = res; ai; ai = ai->ai_next) {
                int one = 1, zero = 0;
                if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                                 ai->ai_protocol)) < 0) {
                        err = errno;
                        continue;
                }
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                /* "::" serves IPv4 too, as most daemons' wildcard does. */
                if (ai->ai_family == AF_INET6)
                        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 64))
                        break;
                err = errno;
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0) {
                sl_strfmt(errstr, errstr_size, "cannot listen on %s: %s", where,
                          strerror(err ? err : EADDRNOTAVAIL));
                return SL_ERR_IO;
        }
        *portp = port;
        {
                struct sockaddr_storage ss;
                socklen_t sl = sizeof(ss);
                if (!getsockname(fd, (struct sockaddr *)&ss, &sl)) {
                        if (ss.ss_family == AF_INET)
                                *portp = ntohs(((struct sockaddr_in *)&ss)->sin_port);
                        else if (ss.ss_family == AF_INET6)
                                *portp = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
                }
        }
        *fdp = fd;
        return SL_OK;
}

sl_err_t sl_obs_http_start(const sl_obs_http_params_t *params, sl_obs_http_t **httpp, char *errstr,
                           size_t errstr_size)
{
        sl_obs_http_t *http;
        const char *host;
        sl_err_t err;
        int fd = -1;

        *httpp = NULL;
        if (!params || params->port < 0 || params->port > 65535) {
                sl_strfmt(errstr, errstr_size, "HTTP port %d: not in 0..65535",
                          params ? params->port : -1);
                return SL_ERR_INVALID_ARG;
        }
        if (!params->port)
                return SL_OK;
        host = params->bind_address && *params->bind_address ? params->bind_address : "0.0.0.0";
        if (!(http = calloc(1, sizeof(*http)))) {
                sl_strfmt(errstr, errstr_size, "HTTP: out of memory");
                return SL_ERR_NOMEM;
        }
        http->params = *params;
        http->params.bind_address = NULL; /* borrowed only for the bind */
        if ((err = listen_on(host, params->port, &fd, &http->port, errstr, errstr_size))) {
                free(http);
                return err;
        }
        http->mhd = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0, NULL, NULL,
            handle, http, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, fd,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned int)CONNECTION_LIMIT,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)PER_IP_LIMIT,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONNECTION_TIMEOUT, MHD_OPTION_END);
        if (!http->mhd) {
                close(fd);
                free(http);
                sl_strfmt(errstr, errstr_size,
                          "cannot serve HTTP on %s:%d: libmicrohttpd failed "
                          "to start",
                          host, params->port);
                return SL_ERR_INTERNAL;
        }
        /* The caller announces it (it knows what the server is for). */
        *httpp = http;
        return SL_OK;
}

int sl_obs_http_port(const sl_obs_http_t *http)
{
        return http ? http->port : 0;
}

void sl_obs_http_stop(sl_obs_http_t *http)
{
        if (!http)
                return;
        MHD_stop_daemon(http->mhd); /* joins its thread and closes the listening socket */
        free(http);
}
