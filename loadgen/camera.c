/* camera.c — simulated cameras on a gst-rtsp-server.
 * Each camera is one shared media factory: "appsrc ! clocksync ! rtph264pay". The
 * appsrc pulls access units from the in-memory clip as fast as downstream takes them
 * (need-data, in the media's streaming thread); clocksync paces them in real time
 * against the pipeline clock, so nothing is decoded or encoded. Each loop of the clip
 * shifts timestamps by one clip period, so they only ever increase.
 * Faults: a buffer probe in front of the payloader drops everything while a camera is
 * frozen (except the first keyframe of a new pipeline, needed to preroll) and, after
 * resume, until the next keyframe. Outage answers 503 to DESCRIBE,
 * SETUP and PLAY. Control-side calls run on the main loop thread; streaming threads
 * only read the camera's atomic state. Feeds hold a reference on their camera, and
 * the camera on its clip, so pipelines that outlive the set during shutdown stay safe. */
#include "camera.h"

#include "vigil/common.h"
#include "vigil/log.h"

#include <gst/app/gstappsrc.h>
#include <stdatomic.h>
#include <string.h>

#define MOD "camera"
#define CAM_NAME_MAX 64
#define CAM_LAUNCH                                                                                 \
    "( appsrc name=src format=time stream-type=stream ! clocksync ! "                              \
    "rtph264pay name=pay0 pt=96 config-interval=-1 )"

typedef struct {
    char *name;
    char *path; /* mount point, "/name" */
    vg_clip_t *clip;
    size_t start_au;        /* the keyframe every new pipeline starts at */
    GstClockTime start_dts; /* its DTS: subtracted so the timeline starts at 0 */
    GstRTSPMediaFactory *factory;
    atomic_int state; /* vg_cam_state_t */
} cam_t;              /* g_atomic_rc_box: the set and every live feed hold a reference */

/* Per media pipeline; touched only by that pipeline's streaming thread. */
typedef struct {
    cam_t *cam;
    size_t next;   /* next AU index */
    uint64_t loop; /* completed loops of the clip */
    bool wait_key; /* after a freeze, drop until a keyframe */
    bool primed;   /* the first keyframe went through (preroll, caps, SDP) */
} feed_t;

struct vg_camset {
    GstRTSPServer *server;
    GPtrArray *cams; /* of cam_t* */
    gulong client_handler;
};

static const char *const state_names[] = {"live", "frozen", "outage"};

/* ---- camera lifetime ---------------------------------------------------------- */

static void cam_clear(gpointer p)
{
    cam_t *cam = p;
    if (cam->factory) g_object_unref(cam->factory);
    vg_clip_unref(cam->clip);
    g_free(cam->name);
    g_free(cam->path);
}

static void cam_release(gpointer p)
{
    g_atomic_rc_box_release_full(p, cam_clear);
}

/* ---- streaming thread: feeding and fault probe ----------------------------------- */

static void feed_need_data(GstAppSrc *src, guint length, gpointer user_data)
{
    (void)length;
    feed_t *feed = user_data;
    const vg_clip_t *clip = feed->cam->clip;
    GstBuffer *buf = vg_clip_buffer(clip, feed->next, feed->loop, feed->cam->start_dts);
    if (++feed->next == clip->n_aus) {
        feed->next = 0;
        feed->loop++;
    }
    gst_app_src_push_buffer(src, buf); /* takes the buffer */
}

static void feed_free(gpointer user_data)
{
    feed_t *feed = user_data;
    cam_release(feed->cam);
    free(feed);
}

static GstPadProbeReturn fault_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    (void)pad;
    feed_t *feed = user_data;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (!feed->primed) {
        /* A new pipeline needs one buffer to preroll and answer DESCRIBE, even when
         * frozen; without it the request (and the server with it) would stall. */
        feed->primed = true;
        return GST_PAD_PROBE_OK;
    }
    if (atomic_load(&feed->cam->state) != VG_CAM_LIVE) {
        feed->wait_key = true;
        return GST_PAD_PROBE_DROP;
    }
    if (feed->wait_key) {
        if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT)) return GST_PAD_PROBE_DROP;
        feed->wait_key = false;
    }
    return GST_PAD_PROBE_OK;
}

static GstAppSrcCallbacks feed_callbacks = {.need_data = feed_need_data};

/* Main loop thread: a new pipeline was built for camera `user_data`. */
static void on_media_configure(GstRTSPMediaFactory *factory, GstRTSPMedia *media,
                               gpointer user_data)
{
    (void)factory;
    cam_t *cam = user_data;
    GstElement *bin = gst_rtsp_media_get_element(media);
    GstElement *src = gst_bin_get_by_name(GST_BIN(bin), "src");
    GstElement *pay = gst_bin_get_by_name(GST_BIN(bin), "pay0");
    VG_CHECK(src != NULL && pay != NULL);
    feed_t *feed = vg_xcalloc(1, sizeof(*feed));
    feed->cam = g_atomic_rc_box_acquire(cam);
    feed->next = cam->start_au;
    g_object_set(src, "caps", cam->clip->caps, NULL);
    gst_app_src_set_callbacks(GST_APP_SRC(src), &feed_callbacks, feed, feed_free);
    GstPad *pad = gst_element_get_static_pad(pay, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, fault_probe, feed, NULL);
    g_object_set_data(G_OBJECT(media), "vg-cam", cam); /* identity only, never deref'd */
    VG_DEBUG(MOD, "media_created", "{s:s}", "camera", cam->name);
    gst_object_unref(pad);
    gst_object_unref(pay);
    gst_object_unref(src);
    gst_object_unref(bin);
}

/* ---- sessions: counting and closing ------------------------------------------- */

typedef struct {
    const cam_t *cam;
    int hits;
} match_t;

static GstRTSPFilterResult match_media(GstRTSPSession *sess, GstRTSPSessionMedia *sm,
                                       gpointer user_data)
{
    (void)sess;
    match_t *m = user_data;
    GstRTSPMedia *media = gst_rtsp_session_media_get_media(sm);
    if (media && g_object_get_data(G_OBJECT(media), "vg-cam") == m->cam) m->hits++;
    return GST_RTSP_FILTER_KEEP;
}

/* Counts (and with `user_data` non-NULL, collects) sessions of one camera. */
static GstRTSPFilterResult match_session(GstRTSPSessionPool *pool, GstRTSPSession *sess,
                                         gpointer user_data)
{
    (void)pool;
    match_t *m = user_data;
    int before = m->hits;
    g_list_free(gst_rtsp_session_filter(sess, match_media, m));
    return m->hits > before ? GST_RTSP_FILTER_REF : GST_RTSP_FILTER_KEEP;
}

static GstRTSPFilterResult match_client_session(GstRTSPClient *client, GstRTSPSession *sess,
                                                gpointer user_data)
{
    (void)client;
    return match_session(NULL, sess, user_data);
}

static GstRTSPFilterResult match_client(GstRTSPServer *server, GstRTSPClient *client,
                                        gpointer user_data)
{
    (void)server;
    match_t *m = user_data;
    int before = m->hits;
    g_list_free_full(gst_rtsp_client_session_filter(client, match_client_session, m),
                     g_object_unref);
    return m->hits > before ? GST_RTSP_FILTER_REF : GST_RTSP_FILTER_KEEP;
}

static GList *camera_sessions(const vg_camset_t *set, const cam_t *cam, int *count)
{
    match_t m = {.cam = cam};
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(set->server);
    GList *sessions = gst_rtsp_session_pool_filter(pool, match_session, &m);
    g_object_unref(pool);
    *count = m.hits;
    return sessions;
}

/* Closes the RTSP connections that carry a session of `cam`, then drops whatever
 * sessions remain (UDP sessions outlive their connection). Returns connections closed. */
static int close_sessions(vg_camset_t *set, cam_t *cam)
{
    match_t m = {.cam = cam};
    GList *clients = gst_rtsp_server_client_filter(set->server, match_client, &m);
    int closed = (int)g_list_length(clients);
    for (GList *l = clients; l; l = l->next)
        gst_rtsp_client_close(l->data);
    g_list_free_full(clients, g_object_unref);

    int left = 0;
    GList *sessions = camera_sessions(set, cam, &left);
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(set->server);
    for (GList *l = sessions; l; l = l->next)
        gst_rtsp_session_pool_remove(pool, l->data);
    g_object_unref(pool);
    g_list_free_full(sessions, g_object_unref);
    return closed;
}

/* ---- outage: refuse requests for cameras that are "down" ------------------------ */

static const cam_t *cam_for_path(const vg_camset_t *set, const char *path)
{
    for (guint i = 0; path && i < set->cams->len; i++) {
        const cam_t *cam = g_ptr_array_index(set->cams, i);
        size_t n = strlen(cam->path);
        if (strncmp(path, cam->path, n) == 0 && (path[n] == '\0' || path[n] == '/')) return cam;
    }
    return NULL;
}

static GstRTSPStatusCode on_pre_request(GstRTSPClient *client, GstRTSPContext *ctx,
                                        gpointer user_data)
{
    (void)client;
    const vg_camset_t *set = user_data;
    const cam_t *cam = cam_for_path(set, ctx->uri ? ctx->uri->abspath : NULL);
    if (cam && atomic_load(&((cam_t *)cam)->state) == VG_CAM_OUTAGE) {
        VG_DEBUG(MOD, "request_refused", "{s:s}", "camera", cam->name);
        return GST_RTSP_STS_SERVICE_UNAVAILABLE;
    }
    return GST_RTSP_STS_OK;
}

static void on_client_connected(GstRTSPServer *server, GstRTSPClient *client, gpointer user_data)
{
    (void)server;
    static const char *const hooks[] = {"pre-describe-request", "pre-setup-request",
                                        "pre-play-request"};
    for (size_t i = 0; i < VG_ARRAY_LEN(hooks); i++)
        g_signal_connect(client, hooks[i], G_CALLBACK(on_pre_request), user_data);
}

/* ---- the set -------------------------------------------------------------------- */

vg_camset_t *vg_camset_new(GstRTSPServer *server)
{
    vg_camset_t *set = vg_xcalloc(1, sizeof(*set));
    set->server = g_object_ref(server);
    set->cams = g_ptr_array_new_with_free_func(cam_release);
    set->client_handler =
        g_signal_connect(server, "client-connected", G_CALLBACK(on_client_connected), set);
    return set;
}

static GstRTSPFilterResult close_any_client(GstRTSPServer *server, GstRTSPClient *client,
                                            gpointer user_data)
{
    (void)server;
    (void)client;
    (void)user_data;
    return GST_RTSP_FILTER_REMOVE;
}

void vg_camset_free(vg_camset_t *set)
{
    if (!set) return;
    g_signal_handler_disconnect(set->server, set->client_handler);
    /* Clients hold signal handlers pointing at the set: close them all first. */
    g_list_free(gst_rtsp_server_client_filter(set->server, close_any_client, NULL));
    GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points(set->server);
    for (guint i = 0; i < set->cams->len; i++) {
        cam_t *cam = g_ptr_array_index(set->cams, i);
        gst_rtsp_mount_points_remove_factory(mounts, cam->path);
    }
    g_object_unref(mounts);
    g_ptr_array_free(set->cams, TRUE);
    g_object_unref(set->server);
    free(set);
}

static bool name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CAM_NAME_MAX) return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int vg_camset_add(vg_camset_t *set, const char *name, vg_clip_t *clip, double phase)
{
    if (!name_valid(name)) return VG_EINVAL;
    if (vg_camset_find(set, name) >= 0) return VG_EEXIST;
    cam_t *cam = g_atomic_rc_box_new0(cam_t);
    cam->name = g_strdup(name);
    cam->path = g_strconcat("/", name, NULL);
    cam->clip = vg_clip_ref(clip);
    cam->start_au = vg_clip_keyframe_at(clip, phase);
    cam->start_dts = clip->aus[cam->start_au].dts;
    atomic_init(&cam->state, VG_CAM_LIVE);
    cam->factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(cam->factory, CAM_LAUNCH);
    gst_rtsp_media_factory_set_shared(cam->factory, TRUE);
    g_signal_connect(cam->factory, "media-configure", G_CALLBACK(on_media_configure), cam);
    GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points(set->server);
    gst_rtsp_mount_points_add_factory(mounts, cam->path, g_object_ref(cam->factory));
    g_object_unref(mounts);
    g_ptr_array_add(set->cams, cam);
    return VG_OK;
}

size_t vg_camset_len(const vg_camset_t *set)
{
    return set->cams->len;
}

int vg_camset_find(const vg_camset_t *set, const char *name)
{
    for (guint i = 0; i < set->cams->len; i++)
        if (strcmp(((cam_t *)g_ptr_array_index(set->cams, i))->name, name) == 0) return (int)i;
    return VG_ENOTFOUND;
}

static cam_t *cam_at(const vg_camset_t *set, size_t i)
{
    VG_CHECK(i < set->cams->len);
    return g_ptr_array_index(set->cams, (guint)i);
}

const char *vg_camset_name(const vg_camset_t *set, size_t i)
{
    return cam_at(set, i)->name;
}

vg_cam_state_t vg_camset_state(const vg_camset_t *set, size_t i)
{
    return (vg_cam_state_t)atomic_load(&cam_at(set, i)->state);
}

const char *vg_cam_state_name(vg_cam_state_t state)
{
    return (unsigned)state < VG_ARRAY_LEN(state_names) ? state_names[state] : "unknown";
}

int vg_camset_clients(const vg_camset_t *set, size_t i)
{
    int count = 0;
    g_list_free_full(camera_sessions(set, cam_at(set, i), &count), g_object_unref);
    return count;
}

int vg_camset_fault(vg_camset_t *set, size_t i, vg_cam_fault_t fault)
{
    static const char *const fault_names[] = {"freeze", "resume", "disconnect", "outage"};
    cam_t *cam = cam_at(set, i);
    int closed = 0;
    switch (fault) {
    case VG_CAM_FAULT_FREEZE:
        atomic_store(&cam->state, VG_CAM_FROZEN);
        break;
    case VG_CAM_FAULT_RESUME:
        atomic_store(&cam->state, VG_CAM_LIVE);
        break;
    case VG_CAM_FAULT_OUTAGE:
        atomic_store(&cam->state, VG_CAM_OUTAGE);
        closed = close_sessions(set, cam);
        break;
    case VG_CAM_FAULT_DISCONNECT:
        closed = close_sessions(set, cam);
        break;
    }
    VG_INFO(MOD, "fault", "{s:s, s:s, s:s, s:i}", "camera", cam->name, "fault", fault_names[fault],
            "state", vg_cam_state_name(atomic_load(&cam->state)), "closed", closed);
    return closed;
}
