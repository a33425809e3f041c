/* pose.cpp — MoveNet pose estimation through OpenCV DNN, behind vigil/pose.h: model
 * loading (Lightning or MultiPose, told apart by their output heads), letterboxing a
 * region of the image to the square input and back, and the single- and multi-person
 * decode described in the models' README (centre, regression, heatmap, offset heads).
 *
 * Threads: a model is used by one thread at a time (its inference executor); the per-run
 * scratch lives in the model. Every extern "C" function runs through vg_cv::guarded(). */
#include "vigil/pose.h"

#include "cv_internal.hpp"

#include <opencv2/dnn.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

using namespace vg_cv;

namespace
{

const int kDefaultInput = 192;      /* Lightning's native input */
const int kDefaultMultiInput = 256; /* MultiPose's */
const float kBoxKeypoint = 0.2f;    /* keypoints at least this sure make the box */
const float kBoxPad = 0.1f;         /* the box grows by this fraction of its size a side */
const float kDuplicateIou = 0.5f;
const int kMinKeypoints = 4;    /* MultiPose: fewer sure keypoints than this is no person */
const float kCentreBias = 1.8f; /* the decode's distance weighting: 1 / (d + 1.8) */

enum Head { kCenter, kHeatmap, kRegress, kOffset, kHeads };
const char *const kHeadNames[kHeads] = {"center", "heatmap", "regress", "offset"};
const int kHeadChannels[kHeads] = {1, VG_POSE_KEYPOINTS, 2 * VG_POSE_KEYPOINTS,
                                   2 * VG_POSE_KEYPOINTS};

/* Where the square input sits in the image: input pixel (u, v) is image pixel
 * (x0 + (u - pad_x) / scale, y0 + (v - pad_y) / scale). */
struct Letterbox {
    int x0, y0;
    double scale, pad_x, pad_y;
};

/* One head as a C x G x G float array. */
struct Map {
    const float *p = nullptr;
    int g = 0;
    float at(int c, int y, int x) const
    {
        return p[((size_t)c * g + y) * g + x];
    }
};

} // namespace

struct vg_pose_model {
    std::string id;
    vg_pose_kind_t kind = VG_POSE_SINGLE;
    int input_size = kDefaultInput;
    int grid = kDefaultInput / 4;
    cv::dnn::Net net;
    std::vector<cv::String> out_names; /* kHeads names, in Head order */
    /* per-run scratch */
    cv::Mat resized, canvas, blob;
    std::vector<cv::Mat> outs;
};

namespace
{

/* The output whose name contains `head`, and not "box_" (box_offset is not offset). */
int find_head(const std::vector<cv::String> &names, const char *head)
{
    for (size_t i = 0; i < names.size(); i++)
        if (names[i].find(head) != std::string::npos && names[i].find("box_") == std::string::npos)
            return (int)i;
    return -1;
}

int check_heads(vg_pose_model *m, const std::vector<cv::String> &names, const char *file, char *err,
                size_t errlen)
{
    if (names.size() != 4 && names.size() != 6)
        return fail(err, errlen, VG_EUNSUPPORTED,
                    "model %s: %zu outputs; MoveNet has 4 (Lightning) or 6 (MultiPose)", file,
                    names.size());
    m->kind = names.size() == 4 ? VG_POSE_SINGLE : VG_POSE_MULTI;
    for (int h = 0; h < kHeads; h++) {
        int i = find_head(names, kHeadNames[h]);
        if (i < 0)
            return fail(err, errlen, VG_EUNSUPPORTED, "model %s: no output named %s", file,
                        kHeadNames[h]);
        const cv::Mat &o = m->outs[(size_t)i];
        if (o.dims != 4 || o.size[0] != 1 || o.size[1] != kHeadChannels[h] ||
            o.size[2] != m->grid || o.size[3] != m->grid)
            return fail(err, errlen, VG_EUNSUPPORTED,
                        "model %s: output %s is not 1x%dx%dx%d (input_size %d / 4)", file,
                        kHeadNames[h], kHeadChannels[h], m->grid, m->grid, m->input_size);
        m->out_names.push_back(names[(size_t)i]);
    }
    return VG_OK;
}

int warm_up(vg_pose_model *m, const char *file, char *err, size_t errlen)
{
    int s = m->input_size;
    cv::Mat blank(s, s, CV_8UC3, cv::Scalar::all(0));
    std::vector<cv::String> names = m->net.getUnconnectedOutLayersNames();
    try {
        cv::dnn::blobFromImage(blank, m->blob, 1.0, cv::Size(), cv::Scalar(), true, false);
        m->net.setInput(m->blob);
        m->net.forward(m->outs, names);
    } catch (const cv::Exception &e) {
        return fail(err, errlen, VG_EIO, "model %s: forward pass at %dx%d failed (%s)", file, s, s,
                    brief(e).c_str());
    }
    return check_heads(m, names, file, err, errlen);
}

int pose_new(const vg_pose_spec_t *s, vg_pose_model **out, char *err, size_t errlen)
{
    if (!s || !out) return fail(err, errlen, VG_EINVAL, "pose: no spec given");
    const char *id = s->model_id ? s->model_id : "?";
    if (s->input_size < 0 || s->input_size > 1024 || s->input_size % 32 != 0)
        return fail(err, errlen, VG_EINVAL,
                    "model %s: input_size %d is not a multiple of 32 in 0..1024", id,
                    s->input_size);
    quiet_opencv();
    std::unique_ptr<vg_pose_model> m(new vg_pose_model);
    m->id = s->model_id ? s->model_id : "";
    m->input_size = s->input_size ? s->input_size : kDefaultInput;
    m->grid = m->input_size / 4;
    int rc = check_file("model", s->weights_path, err, errlen, nullptr);
    if (rc != VG_OK) return rc;
    try {
        m->net = cv::dnn::readNetFromONNX(s->weights_path);
    } catch (const cv::Exception &e) {
        return fail(err, errlen, VG_EIO, "model %s: not a loadable ONNX network (%s)",
                    s->weights_path, brief(e).c_str());
    }
    if (m->net.empty())
        return fail(err, errlen, VG_EIO, "model %s: no network layers", s->weights_path);
    rc = warm_up(m.get(), s->weights_path, err, errlen);
    if (rc == VG_OK && s->input_size == 0 && m->kind == VG_POSE_MULTI) {
        m->input_size = kDefaultMultiInput; /* MultiPose's native size */
        m->grid = m->input_size / 4;
        m->out_names.clear();
        rc = warm_up(m.get(), s->weights_path, err, errlen);
    }
    if (rc != VG_OK) return rc;
    *out = m.release();
    return VG_OK;
}

/* Pixel rectangle of a normalised region, at least 1x1, inside the image. */
cv::Rect region_px(const vg_box_t *r, int width, int height)
{
    if (!r) return cv::Rect(0, 0, width, height);
    int x0 = std::clamp((int)std::floor(r->x * width), 0, width - 1);
    int y0 = std::clamp((int)std::floor(r->y * height), 0, height - 1);
    int x1 = std::clamp((int)std::ceil((r->x + r->w) * width), x0 + 1, width);
    int y1 = std::clamp((int)std::ceil((r->y + r->h) * height), y0 + 1, height);
    return cv::Rect(x0, y0, x1 - x0, y1 - y0);
}

/* Letterboxes `rect` of the frame into m->canvas (centred, black bars) and m->blob. */
Letterbox letterbox(vg_pose_model *m, const cv::Mat &frame, cv::Rect rect)
{
    int s = m->input_size;
    double scale = (double)s / std::max(rect.width, rect.height);
    int w = std::clamp((int)std::lround(rect.width * scale), 1, s);
    int h = std::clamp((int)std::lround(rect.height * scale), 1, s);
    Letterbox lb = {rect.x, rect.y, scale, (double)((s - w) / 2), (double)((s - h) / 2)};
    m->canvas.create(s, s, CV_8UC3);
    m->canvas.setTo(cv::Scalar::all(0));
    cv::Mat dst = m->canvas(cv::Rect((s - w) / 2, (s - h) / 2, w, h));
    resize_to(frame(rect), dst, dst.size());
    cv::dnn::blobFromImage(m->canvas, m->blob, 1.0, cv::Size(), cv::Scalar(), true, false);
    return lb;
}

/* Argmax over the grid of map[c][y][x] / (distance to (ry, rx) + bias). */
void weighted_argmax(const Map &map, int c, double ry, double rx, int *ky, int *kx)
{
    float best = -1.0f;
    for (int y = 0; y < map.g; y++) {
        for (int x = 0; x < map.g; x++) {
            double d = std::sqrt((y - ry) * (y - ry) + (x - rx) * (x - rx));
            float v = (float)(map.at(c, y, x) / (d + kCentreBias));
            if (v > best) {
                best = v;
                *ky = y;
                *kx = x;
            }
        }
    }
}

/* Keypoints of the person centred at grid cell (cy, cx), in input pixels. */
void decode_person(const Map *heads, int s, int cy, int cx, vg_keypoint_t *kp)
{
    int g = heads[kCenter].g;
    for (int k = 0; k < VG_POSE_KEYPOINTS; k++) {
        double ry = cy + heads[kRegress].at(2 * k, cy, cx);
        double rx = cx + heads[kRegress].at(2 * k + 1, cy, cx);
        int ky = 0, kx = 0;
        weighted_argmax(heads[kHeatmap], k, ry, rx, &ky, &kx);
        kp[k].y = (float)((ky + heads[kOffset].at(2 * k, ky, kx)) / g * s);
        kp[k].x = (float)((kx + heads[kOffset].at(2 * k + 1, ky, kx)) / g * s);
        kp[k].score = heads[kHeatmap].at(k, ky, kx);
    }
}

/* Local maxima of the centre map (3x3) scoring >= min_score, best first, at most max. */
std::vector<std::pair<float, cv::Point>> centres(const Map &c, float min_score, size_t max)
{
    std::vector<std::pair<float, cv::Point>> found;
    for (int y = 0; y < c.g; y++) {
        for (int x = 0; x < c.g; x++) {
            float v = c.at(0, y, x);
            if (!(v >= min_score)) continue;
            bool peak = true;
            for (int dy = -1; dy <= 1 && peak; dy++)
                for (int dx = -1; dx <= 1 && peak; dx++) {
                    int yy = y + dy, xx = x + dx;
                    if ((dy || dx) && yy >= 0 && xx >= 0 && yy < c.g && xx < c.g &&
                        c.at(0, yy, xx) > v)
                        peak = false;
                }
            if (peak) found.push_back({v, cv::Point(x, y)});
        }
    }
    std::stable_sort(found.begin(), found.end(),
                     [](const auto &a, const auto &b) { return a.first > b.first; });
    if (found.size() > max) found.resize(max);
    return found;
}

/* Input pixels to the image's normalised coordinates, clamped to [0, 1]. */
void to_image(const Letterbox &lb, int width, int height, vg_keypoint_t *kp)
{
    for (int k = 0; k < VG_POSE_KEYPOINTS; k++) {
        double x = lb.x0 + (kp[k].x - lb.pad_x) / lb.scale;
        double y = lb.y0 + (kp[k].y - lb.pad_y) / lb.scale;
        kp[k].x = (float)std::clamp(x / width, 0.0, 1.0);
        kp[k].y = (float)std::clamp(y / height, 0.0, 1.0);
    }
}

/* The extent of the sure keypoints, padded; false when fewer than min_n are sure. */
bool keypoint_box(const vg_keypoint_t *kp, int min_n, vg_box_t *box)
{
    float x0 = 1, y0 = 1, x1 = 0, y1 = 0;
    int n = 0;
    for (int k = 0; k < VG_POSE_KEYPOINTS; k++) {
        if (!(kp[k].score >= kBoxKeypoint)) continue;
        x0 = std::min(x0, kp[k].x);
        y0 = std::min(y0, kp[k].y);
        x1 = std::max(x1, kp[k].x);
        y1 = std::max(y1, kp[k].y);
        n++;
    }
    if (n < min_n) return false;
    float px = (x1 - x0) * kBoxPad, py = (y1 - y0) * kBoxPad;
    x0 = std::max(0.0f, x0 - px);
    y0 = std::max(0.0f, y0 - py);
    x1 = std::min(1.0f, x1 + px);
    y1 = std::min(1.0f, y1 + py);
    *box = {x0, y0, x1 - x0, y1 - y0};
    return true;
}

float iou(const vg_box_t &a, const vg_box_t &b)
{
    float ix = std::min(a.x + a.w, b.x + b.w) - std::max(a.x, b.x);
    float iy = std::min(a.y + a.h, b.y + b.h) - std::max(a.y, b.y);
    if (ix <= 0 || iy <= 0) return 0;
    float inter = ix * iy;
    return inter / (a.w * a.h + b.w * b.h - inter);
}

size_t decode_single(vg_pose_model *m, const Map *heads, const Letterbox &lb, int width, int height,
                     const cv::Rect &rect, vg_pose_t *out)
{
    const Map &c = heads[kCenter];
    int cy = 0, cx = 0;
    weighted_argmax(c, 0, c.g / 2.0, c.g / 2.0, &cy, &cx);
    decode_person(heads, m->input_size, cy, cx, out->kp);
    to_image(lb, width, height, out->kp);
    float sum = 0;
    for (int k = 0; k < VG_POSE_KEYPOINTS; k++)
        sum += out->kp[k].score;
    out->score = sum / VG_POSE_KEYPOINTS;
    if (!keypoint_box(out->kp, 2, &out->box))
        out->box = {(float)rect.x / width, (float)rect.y / height, (float)rect.width / width,
                    (float)rect.height / height};
    return 1;
}

size_t decode_multi(vg_pose_model *m, const Map *heads, const Letterbox &lb, int width, int height,
                    float min_score, vg_pose_t *out, size_t max_out)
{
    size_t n = 0;
    for (const auto &c : centres(heads[kCenter], min_score, VG_POSE_MAX_PEOPLE)) {
        if (n >= max_out) break;
        vg_pose_t p;
        p.score = c.first;
        decode_person(heads, m->input_size, c.second.y, c.second.x, p.kp);
        to_image(lb, width, height, p.kp);
        if (!keypoint_box(p.kp, kMinKeypoints, &p.box)) continue;
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = iou(out[i].box, p.box) > kDuplicateIou;
        if (!dup) out[n++] = p;
    }
    return n;
}

int pose_run(vg_pose_model *m, const uint8_t *bgr, int width, int height, int stride,
             const vg_box_t *region, float min_score, vg_pose_t *out, size_t max_out, size_t *n_out,
             double *forward_ms)
{
    if (!m || !valid_image(bgr, width, height, stride) || (!out && max_out) || !n_out ||
        !(min_score >= 0.0f) ||
        (region && !(region->w > 0 && region->h > 0 && region->x < 1 && region->y < 1)))
        return VG_EINVAL;
    *n_out = 0;
    cv::Mat frame = wrap(bgr, width, height, stride);
    cv::Rect rect = region_px(region, width, height);
    Letterbox lb = letterbox(m, frame, rect);
    auto t0 = std::chrono::steady_clock::now();
    m->net.setInput(m->blob);
    m->net.forward(m->outs, m->out_names);
    if (forward_ms)
        *forward_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
    Map heads[kHeads];
    for (int h = 0; h < kHeads; h++)
        heads[h] = {m->outs[(size_t)h].ptr<float>(), m->grid};
    if (max_out == 0) return VG_OK;
    if (m->kind == VG_POSE_SINGLE)
        *n_out = decode_single(m, heads, lb, width, height, rect, out);
    else
        *n_out = decode_multi(m, heads, lb, width, height, min_score, out, max_out);
    return VG_OK;
}

} // namespace

extern "C" int vg_pose_new(const vg_pose_spec_t *spec, vg_pose_model_t **out, char *err,
                           size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    int rc = guarded("vg_pose_new", [&] { return pose_new(spec, out, err, errlen); });
    if (rc == VG_EIO && err && errlen && !err[0])
        fail(err, errlen, rc, "model %s: OpenCV failed while loading (see log)",
             spec && spec->model_id ? spec->model_id : "?");
    return rc;
}

extern "C" void vg_pose_free(vg_pose_model_t *m)
{
    delete m;
}

extern "C" vg_pose_kind_t vg_pose_kind(const vg_pose_model_t *m)
{
    return m ? m->kind : VG_POSE_SINGLE;
}

extern "C" int vg_pose_input_size(const vg_pose_model_t *m)
{
    return m ? m->input_size : 0;
}

extern "C" int vg_pose_run(vg_pose_model_t *m, const uint8_t *bgr, int width, int height,
                           int stride, const vg_box_t *region, float min_score, vg_pose_t *out,
                           size_t max_out, size_t *n_out, double *forward_ms)
{
    return guarded("vg_pose_run", [&] {
        return pose_run(m, bgr, width, height, stride, region, min_score, out, max_out, n_out,
                        forward_ms);
    });
}

extern "C" vg_box_t vg_pose_crop_box(vg_box_t person, int width, int height)
{
    if (width <= 0 || height <= 0) return person;
    double cx = (person.x + person.w / 2) * width, cy = (person.y + person.h / 2) * height;
    double side = 1.25 * std::max(person.w * width, person.h * height);
    double sw = std::min(side, (double)width), sh = std::min(side, (double)height);
    double x0 = std::clamp(cx - side / 2, 0.0, width - sw);
    double y0 = std::clamp(cy - side / 2, 0.0, height - sh);
    return {(float)(x0 / width), (float)(y0 / height), (float)(sw / width), (float)(sh / height)};
}
