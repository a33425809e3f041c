/* control.c — line protocol for fault injection (see control.h for the grammar).
 * A GSocketService on the main loop accepts connections; each connection reads lines
 * asynchronously and answers each command before reading the next. Commands are a
 * table; each handler sees the parsed target (one camera or all of them). Answers
 * are small (one line, or one per camera for status) and written synchronously. */
#include "control.h"

#include "vigil/common.h"
#include "vigil/log.h"

#include <gio/gio.h>
#include <string.h>

#define MOD "control"
#define CTL_MAX_LINE 1024

struct vg_ctl {
    vg_camset_t *set; /* borrowed */
    GSocketService *service;
    GCancellable *cancel;
    GList *conns; /* of conn_t* */
    int port;
};

typedef struct {
    vg_ctl_t *ctl;
    GSocketConnection *sock;
    GDataInputStream *in;
} conn_t;

typedef struct {
    const char *name;
    bool needs_target;
    vg_cam_fault_t fault; /* for fault commands */
    void (*run)(vg_camset_t *set, const char *cmd, vg_cam_fault_t fault, size_t first, size_t end,
                GString *out);
} ctl_cmd_t;

static void run_fault(vg_camset_t *set, const char *cmd, vg_cam_fault_t fault, size_t first,
                      size_t end, GString *out)
{
    int closed = 0;
    for (size_t i = first; i < end; i++)
        closed += vg_camset_fault(set, i, fault);
    g_string_append_printf(out, "ok %s %s cameras=%zu closed=%d\n", cmd,
                           end - first == 1 ? vg_camset_name(set, first) : "*", end - first,
                           closed);
}

static void run_status(vg_camset_t *set, const char *cmd, vg_cam_fault_t fault, size_t first,
                       size_t end, GString *out)
{
    (void)cmd;
    (void)fault;
    g_string_append_printf(out, "ok cameras=%zu\n", end - first);
    for (size_t i = first; i < end; i++)
        g_string_append_printf(out, "%s %s %d\n", vg_camset_name(set, i),
                               vg_cam_state_name(vg_camset_state(set, i)),
                               vg_camset_clients(set, i));
}

static const ctl_cmd_t commands[] = {
    {"freeze", true, VG_CAM_FAULT_FREEZE, run_fault},
    {"resume", true, VG_CAM_FAULT_RESUME, run_fault},
    {"disconnect", true, VG_CAM_FAULT_DISCONNECT, run_fault},
    {"outage", true, VG_CAM_FAULT_OUTAGE, run_fault},
    {"status", false, VG_CAM_FAULT_RESUME, run_status},
};

static const ctl_cmd_t *find_command(const char *name)
{
    for (size_t i = 0; i < VG_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

char *vg_ctl_execute(vg_camset_t *set, const char *line)
{
    GString *out = g_string_new(NULL);
    char **argv = g_strsplit_set(line, " \t\r\n", -1);
    /* drop the empty tokens that repeated blanks leave */
    GPtrArray *args = g_ptr_array_new();
    for (char **a = argv; *a; a++)
        if (**a) g_ptr_array_add(args, *a);
    const ctl_cmd_t *cmd = args->len ? find_command(g_ptr_array_index(args, 0)) : NULL;
    const char *target = args->len > 1 ? g_ptr_array_index(args, 1) : NULL;
    size_t first = 0, end = vg_camset_len(set);
    if (args->len == 0) {
        g_string_append(out, "error empty command\n");
    } else if (!cmd) {
        g_string_append_printf(out,
                               "error unknown command '%s' (try freeze, resume, "
                               "disconnect, outage, status)\n",
                               (const char *)g_ptr_array_index(args, 0));
    } else if (args->len > 2 || (cmd->needs_target && !target)) {
        g_string_append_printf(out, "error usage: %s %s\n", cmd->name,
                               cmd->needs_target ? "NAME|*" : "[NAME|*]");
    } else if (target && strcmp(target, "*") != 0 && vg_camset_find(set, target) < 0) {
        g_string_append_printf(out, "error unknown camera '%s'\n", target);
    } else {
        if (target && strcmp(target, "*") != 0) {
            first = (size_t)vg_camset_find(set, target);
            end = first + 1;
        }
        cmd->run(set, cmd->name, cmd->fault, first, end, out);
    }
    g_ptr_array_free(args, TRUE);
    g_strfreev(argv);
    return g_string_free(out, FALSE);
}

/* ---- connections ------------------------------------------------------------------ */

static void conn_free(conn_t *conn)
{
    conn->ctl->conns = g_list_remove(conn->ctl->conns, conn);
    g_io_stream_close(G_IO_STREAM(conn->sock), NULL, NULL);
    g_object_unref(conn->in);
    g_object_unref(conn->sock);
    free(conn);
}

static void conn_read_next(conn_t *conn);

static bool conn_reply(conn_t *conn, const char *text)
{
    GOutputStream *os = g_io_stream_get_output_stream(G_IO_STREAM(conn->sock));
    return g_output_stream_write_all(os, text, strlen(text), NULL, conn->ctl->cancel, NULL);
}

static void on_line(GObject *source, GAsyncResult *res, gpointer user_data)
{
    conn_t *conn = user_data;
    gsize len = 0;
    GError *err = NULL;
    char *line = g_data_input_stream_read_line_finish(G_DATA_INPUT_STREAM(source), res, &len, &err);
    if (!line) { /* EOF, error or shutdown */
        g_clear_error(&err);
        conn_free(conn);
        return;
    }
    bool ok;
    if (len > CTL_MAX_LINE) {
        conn_reply(conn, "error line too long\n");
        ok = false;
    } else {
        char *answer = vg_ctl_execute(conn->ctl->set, line);
        VG_DEBUG(MOD, "command", "{s:s, s:s}", "line", line, "answer", answer);
        ok = conn_reply(conn, answer);
        g_free(answer);
    }
    g_free(line);
    if (ok)
        conn_read_next(conn);
    else
        conn_free(conn);
}

static void conn_read_next(conn_t *conn)
{
    g_data_input_stream_read_line_async(conn->in, G_PRIORITY_DEFAULT, conn->ctl->cancel, on_line,
                                        conn);
}

static gboolean on_incoming(GSocketService *service, GSocketConnection *sock, GObject *source,
                            gpointer user_data)
{
    (void)service;
    (void)source;
    vg_ctl_t *ctl = user_data;
    conn_t *conn = vg_xcalloc(1, sizeof(*conn));
    conn->ctl = ctl;
    conn->sock = g_object_ref(sock);
    conn->in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(sock)));
    g_data_input_stream_set_newline_type(conn->in, G_DATA_STREAM_NEWLINE_TYPE_ANY);
    ctl->conns = g_list_prepend(ctl->conns, conn);
    conn_read_next(conn);
    return TRUE;
}

int vg_ctl_start(vg_camset_t *set, const char *addr, int port, vg_ctl_t **out)
{
    GError *err = NULL;
    GInetAddress *ia = g_inet_address_new_from_string(addr);
    if (!ia) {
        VG_ERROR(MOD, "bad_address", "{s:s}", "address", addr);
        return VG_EINVAL;
    }
    GSocketAddress *sa = g_inet_socket_address_new(ia, (guint16)port);
    g_object_unref(ia);
    vg_ctl_t *ctl = vg_xcalloc(1, sizeof(*ctl));
    ctl->set = set;
    ctl->cancel = g_cancellable_new();
    ctl->service = g_socket_service_new();
    GSocketAddress *bound = NULL;
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(ctl->service), sa, G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_TCP, NULL, &bound, &err)) {
        VG_ERROR(MOD, "listen_failed", "{s:s, s:i, s:s}", "address", addr, "port", port, "error",
                 err->message);
        g_error_free(err);
        g_object_unref(sa);
        vg_ctl_free(ctl);
        return VG_EIO;
    }
    ctl->port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    g_object_unref(bound);
    g_object_unref(sa);
    g_signal_connect(ctl->service, "incoming", G_CALLBACK(on_incoming), ctl);
    g_socket_service_start(ctl->service);
    *out = ctl;
    return VG_OK;
}

int vg_ctl_port(const vg_ctl_t *ctl)
{
    return ctl->port;
}

void vg_ctl_free(vg_ctl_t *ctl)
{
    if (!ctl) return;
    g_socket_service_stop(ctl->service);
    g_socket_listener_close(G_SOCKET_LISTENER(ctl->service));
    g_cancellable_cancel(ctl->cancel);
    /* Pending reads complete (cancelled) on this context and free their connection. */
    while (ctl->conns)
        g_main_context_iteration(NULL, TRUE);
    g_object_unref(ctl->service);
    g_object_unref(ctl->cancel);
    free(ctl);
}
