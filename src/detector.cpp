/* detector.cpp — OpenCV DNN detection (Darknet and ONNX YOLO,
 * decode, per-class NMS), the HOG people detector, motion, optical flow, snapshot JPEGs
 * and image loading, behind the C API of vigil/detector.h.
 *
 * Threads: a detector, motion or flow object is used by one thread at a time (its
 * inference executor); snapshot and image functions keep no state. Nothing here is
 * shared between objects except OpenCV's own process-wide settings (thread count,
 * logging, which is silenced once so only vigil's JSON lines reach stderr).
 *
 * Every extern "C" function runs its body through guarded(): OpenCV and standard
 * exceptions become VG_EIO (logged), allocation failure aborts like vg_xmalloc. */
#include "vigil/detector.h"

#include "cv_internal.hpp"

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/video/tracking.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <string>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace vg_cv;

namespace
{

const int kDefaultInput = 320;
const float kNmsIou = 0.45f;
const int kHogSide = 640;    /* HOG runs with the longer side at this many pixels */
const int kSmallWidth = 160; /* motion and flow work at this width */

enum class Kind { darknet, yolov5, yolov8, hog };

/* Where the numbers of one output tensor live: box i, attribute a is at
 * data[i * box_step + a * attr_step]; attributes 0..3 are cx, cy, w, h. */
struct Layout {
    const float *data;
    int n_boxes, box_step, attr_step;
    int score_at; /* attribute index of class 0's score */
    int obj_at;   /* attribute index of objectness to multiply in, or -1 */
    int gate_at;  /* attribute that bounds every confidence from above, or -1 */
    float scale;  /* coordinates to normalised */
};

struct Candidate {
    int cls;
    float conf;
    cv::Rect2d box;
};

/* Grayscale, about kSmallWidth wide, blurred: what motion and flow compare. */
void small_gray(const cv::Mat &frame, cv::Mat &scratch, cv::Mat &out)
{
    int w = std::min(kSmallWidth, frame.cols);
    int h = std::max(1, (int)std::lround((double)frame.rows * w / frame.cols));
    const cv::Mat *src = &frame;
    if (w != frame.cols || h != frame.rows) {
        resize_to(frame, scratch, cv::Size(w, h));
        src = &scratch;
    }
    cv::cvtColor(*src, out, cv::COLOR_BGR2GRAY);
    cv::GaussianBlur(out, out, cv::Size(5, 5), 0);
}

} // namespace

/* ---------------------------------------------------------------- detector ---- */

struct vg_detector {
    std::string id;
    Kind kind = Kind::darknet;
    int input_size = kDefaultInput;
    int n_classes = 0;
    std::vector<std::string> labels; /* n_classes entries once loaded */
    cv::dnn::Net net;
    std::vector<cv::String> out_names;
    cv::HOGDescriptor hog;
    /* per-run scratch, kept to avoid reallocating every frame */
    cv::Mat resized, blob;
    std::vector<cv::Mat> outs;
    std::vector<Candidate> cands;
};

namespace
{

int load_labels(vg_detector *d, const char *path, char *err, size_t errlen)
{
    int rc = check_file("labels", path, err, errlen, nullptr);
    if (rc != VG_OK) return rc;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
            line.pop_back();
        d->labels.push_back(line);
    }
    if (in.bad()) return fail(err, errlen, VG_EIO, "labels %s: read error", path);
    while (!d->labels.empty() && d->labels.back().empty())
        d->labels.pop_back();
    if (d->labels.empty()) return fail(err, errlen, VG_EIO, "labels %s: no labels in file", path);
    return VG_OK;
}

/* Fills every class's label once the class count is known. */
void finish_labels(vg_detector *d, const char *labels_path)
{
    if (labels_path && *labels_path && (int)d->labels.size() != d->n_classes)
        VG_WARN("detector", "labels_mismatch", "{s:s, s:s, s:i, s:i}", "model_id", d->id.c_str(),
                "labels_path", labels_path, "labels", (int)d->labels.size(), "classes",
                d->n_classes);
    d->labels.resize(d->n_classes);
    for (int i = 0; i < d->n_classes; i++) {
        if (!d->labels[i].empty()) continue;
        d->labels[i] = d->n_classes == 1 ? "person" : "class" + std::to_string(i);
    }
}

/* Darknet weights start with major, minor, revision (int32) and a seen count (int64
 * from version 0.2 on, else int32); then float32 parameters. OpenCV reads a short file
 * without complaint, so the header and the size are checked here. */
int darknet_header(const char *path, off_t size, off_t *header, char *err, size_t errlen)
{
    int32_t v[3] = {0, 0, 0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(v, sizeof(int32_t), 3, f) : 0;
    if (f) fclose(f);
    if (got != 3 || size < 16)
        return fail(err, errlen, VG_EIO, "weights %s: too short to be Darknet weights (%lld bytes)",
                    path, (long long)size);
    if (v[0] < 0 || v[0] > 9 || v[1] < 0 || v[1] > 99 || v[2] < 0)
        return fail(err, errlen, VG_EIO, "weights %s: not a Darknet weights file (header %d.%d.%d)",
                    path, v[0], v[1], v[2]);
    *header = 12 + (v[0] * 10 + v[1] >= 2 ? 8 : 4);
    return VG_OK;
}

/* Number of float parameters the loaded network took from the weights file. */
size_t darknet_params(cv::dnn::Net &net)
{
    size_t n = 0;
    for (const cv::String &name : net.getLayerNames()) {
        cv::Ptr<cv::dnn::Layer> layer = net.getLayer(net.getLayerId(name));
        if (layer->type == "Region") /* anchors come from the cfg */
            continue;
        for (const cv::Mat &b : layer->blobs)
            n += b.total();
    }
    return n;
}

int load_darknet(vg_detector *d, const vg_detector_spec_t *s, char *err, size_t errlen)
{
    off_t size = 0, header = 0;
    int rc = check_file("config", s->config_path, err, errlen, nullptr);
    if (rc == VG_OK) rc = check_file("weights", s->weights_path, err, errlen, &size);
    if (rc == VG_OK) rc = darknet_header(s->weights_path, size, &header, err, errlen);
    if (rc != VG_OK) return rc;
    try {
        d->net = cv::dnn::readNetFromDarknet(s->config_path, s->weights_path);
    } catch (const cv::Exception &e) {
        return fail(err, errlen, VG_EIO, "config %s / weights %s: not a Darknet network (%s)",
                    s->config_path, s->weights_path, brief(e).c_str());
    }
    if (d->net.empty())
        return fail(err, errlen, VG_EIO, "config %s: no network layers", s->config_path);
    off_t need = header + (off_t)(4 * darknet_params(d->net));
    if (size < need)
        return fail(err, errlen, VG_EIO, "weights %s: truncated (%lld bytes, config %s needs %lld)",
                    s->weights_path, (long long)size, s->config_path, (long long)need);
    if (size > need)
        return fail(err, errlen, VG_EIO,
                    "weights %s: does not match config %s (%lld bytes, config needs %lld)",
                    s->weights_path, s->config_path, (long long)size, (long long)need);
    d->kind = Kind::darknet;
    return VG_OK;
}

int load_onnx(vg_detector *d, const vg_detector_spec_t *s, char *err, size_t errlen)
{
    int rc = check_file("model", s->weights_path, err, errlen, nullptr);
    if (rc != VG_OK) return rc;
    try {
        d->net = cv::dnn::readNetFromONNX(s->weights_path);
    } catch (const cv::Exception &e) {
        return fail(err, errlen, VG_EIO, "model %s: not a loadable ONNX network (%s)",
                    s->weights_path, brief(e).c_str());
    }
    if (d->net.empty())
        return fail(err, errlen, VG_EIO, "model %s: no network layers", s->weights_path);
    d->kind = Kind::yolov5; /* refined from the output shape by the warm-up */
    return VG_OK;
}

std::string shape_str(const cv::Mat &m)
{
    std::string s = "[";
    for (int i = 0; i < m.dims; i++)
        s += (i ? ", " : "") + std::to_string(m.size[i]);
    return s + "]";
}

/* Runs one forward pass on a blank input and learns the output layout and class count. */
int warm_up(vg_detector *d, const char *file, char *err, size_t errlen)
{
    int s = d->input_size;
    cv::Mat blank(s, s, CV_8UC3, cv::Scalar::all(0));
    std::vector<cv::String> names = d->net.getUnconnectedOutLayersNames();
    try {
        cv::dnn::blobFromImage(blank, d->blob, 1.0 / 255.0, cv::Size(), cv::Scalar(), true, false);
        d->net.setInput(d->blob);
        d->net.forward(d->outs, names);
    } catch (const cv::Exception &e) {
        return fail(err, errlen, VG_EIO, "model %s: forward pass at %dx%d failed (%s)", file, s, s,
                    brief(e).c_str());
    }
    if (d->kind == Kind::darknet) {
        for (const cv::Mat &o : d->outs)
            if (o.dims != 2 || o.cols < 6 || o.cols != d->outs[0].cols)
                return fail(err, errlen, VG_EUNSUPPORTED,
                            "model %s: output %s is not YOLO rows [N, 5+classes]", file,
                            shape_str(o).c_str());
        d->out_names = names;
        d->n_classes = d->outs[0].cols - 5;
        return VG_OK;
    }
    for (size_t i = 0; i < d->outs.size(); i++) {
        const cv::Mat &o = d->outs[i];
        if (o.dims != 3 || o.size[0] != 1) continue;
        bool v5 = o.size[1] > o.size[2];
        d->kind = v5 ? Kind::yolov5 : Kind::yolov8;
        d->n_classes = v5 ? o.size[2] - 5 : o.size[1] - 4;
        if (d->n_classes < 1) break;
        d->out_names = {names[i]};
        return VG_OK;
    }
    return fail(err, errlen, VG_EUNSUPPORTED,
                "model %s: output %s is neither YOLOv5 [1, N, 5+C] nor YOLOv8 [1, 4+C, N]", file,
                d->outs.empty() ? "none" : shape_str(d->outs[0]).c_str());
}

int detector_new(const vg_detector_spec_t *s, vg_detector **out, char *err, size_t errlen)
{
    if (!s || !out || !s->format)
        return fail(err, errlen, VG_EINVAL, "detector: no spec or format given");
    if (s->input_size < 0 || s->input_size > 4096 || s->input_size % 32 != 0)
        return fail(err, errlen, VG_EINVAL,
                    "model %s: input_size %d is not a multiple of 32 in 0..4096",
                    s->model_id ? s->model_id : "?", s->input_size);
    quiet_opencv();
    std::unique_ptr<vg_detector> d(new vg_detector);
    d->id = s->model_id ? s->model_id : "";
    d->input_size = s->input_size ? s->input_size : kDefaultInput;
    int rc = VG_OK;
    if (strcmp(s->format, "builtin-hog") == 0) {
        d->kind = Kind::hog;
        d->hog.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
        d->n_classes = 1;
        d->labels = {"person"};
        *out = d.release();
        return VG_OK;
    }
    if (strcmp(s->format, "darknet") == 0)
        rc = load_darknet(d.get(), s, err, errlen);
    else if (strcmp(s->format, "onnx") == 0)
        rc = load_onnx(d.get(), s, err, errlen);
    else
        rc = fail(err, errlen, VG_EUNSUPPORTED,
                  "model %s: format \"%s\" is not darknet, onnx or builtin-hog",
                  s->model_id ? s->model_id : "?", s->format);
    if (rc == VG_OK && s->labels_path && *s->labels_path)
        rc = load_labels(d.get(), s->labels_path, err, errlen);
    if (rc == VG_OK) rc = warm_up(d.get(), s->weights_path, err, errlen);
    if (rc != VG_OK) return rc;
    finish_labels(d.get(), s->labels_path);
    *out = d.release();
    return VG_OK;
}

Layout layout_of(const vg_detector *d, const cv::Mat &o)
{
    float px = 1.0f / (float)d->input_size;
    const float *p = o.ptr<float>();
    if (d->kind == Kind::darknet) return {p, o.rows, o.cols, 1, 5, -1, 4, 1.0f};
    if (d->kind == Kind::yolov5) return {p, o.size[1], o.size[2], 1, 5, 4, 4, px};
    return {p, o.size[2], 1, o.size[2], 4, -1, -1, px}; /* yolov8: [1, 4+C, N] */
}

void decode(const Layout &l, int n_classes, float thr, int class_filter,
            std::vector<Candidate> &cands)
{
    for (int i = 0; i < l.n_boxes; i++) {
        const float *b = l.data + (size_t)i * l.box_step;
        auto at = [&](int a) { return b[(size_t)a * l.attr_step]; };
        if (l.gate_at >= 0 && !(at(l.gate_at) >= thr)) continue;
        int best = 0;
        float score = at(l.score_at);
        for (int c = 1; c < n_classes; c++) {
            if (at(l.score_at + c) > score) {
                score = at(l.score_at + c);
                best = c;
            }
        }
        float conf = l.obj_at >= 0 ? score * at(l.obj_at) : score;
        if (!(conf >= thr && conf > 0.0f) || (class_filter >= 0 && best != class_filter)) continue;
        double cx = at(0) * l.scale, cy = at(1) * l.scale;
        double w = at(2) * l.scale, h = at(3) * l.scale;
        double x0 = std::clamp(cx - w / 2, 0.0, 1.0), y0 = std::clamp(cy - h / 2, 0.0, 1.0);
        double x1 = std::clamp(cx + w / 2, 0.0, 1.0), y1 = std::clamp(cy + h / 2, 0.0, 1.0);
        if (!(x1 > x0 && y1 > y0)) continue; /* empty after clamping, or NaN */
        cands.push_back({best, std::min(conf, 1.0f), cv::Rect2d(x0, y0, x1 - x0, y1 - y0)});
    }
}

/* Per-class NMS over d->cands; writes the survivors, best first. */
size_t suppress(vg_detector *d, vg_detection_t *out, size_t max_out)
{
    std::vector<Candidate> &c = d->cands;
    std::stable_sort(c.begin(), c.end(), [](const Candidate &a, const Candidate &b) {
        return a.cls != b.cls ? a.cls < b.cls : a.conf > b.conf;
    });
    std::vector<Candidate> kept;
    for (size_t i = 0; i < c.size();) {
        size_t j = i;
        std::vector<cv::Rect2d> boxes;
        std::vector<float> scores;
        for (; j < c.size() && c[j].cls == c[i].cls; j++) {
            boxes.push_back(c[j].box);
            scores.push_back(c[j].conf);
        }
        std::vector<int> keep;
        cv::dnn::NMSBoxes(boxes, scores, 0.0f, kNmsIou, keep);
        for (int k : keep)
            kept.push_back(c[i + (size_t)k]);
        i = j;
    }
    std::stable_sort(kept.begin(), kept.end(),
                     [](const Candidate &a, const Candidate &b) { return a.conf > b.conf; });
    size_t n = std::min(kept.size(), max_out);
    for (size_t i = 0; i < n; i++) {
        const Candidate &k = kept[i];
        vg_detection_t *o = &out[i];
        o->class_id = k.cls;
        snprintf(o->label, sizeof(o->label), "%s", d->labels[k.cls].c_str());
        o->confidence = k.conf;
        o->x = (float)k.box.x;
        o->y = (float)k.box.y;
        o->w = (float)k.box.width;
        o->h = (float)k.box.height;
    }
    return n;
}

double ms_since(std::chrono::steady_clock::time_point t0)
{
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

double run_net(vg_detector *d, const cv::Mat &frame, float thr, int class_filter)
{
    cv::Size size(d->input_size, d->input_size);
    const cv::Mat *src = &frame;
    if (frame.size() != size) {
        resize_to(frame, d->resized, size);
        src = &d->resized;
    }
    cv::dnn::blobFromImage(*src, d->blob, 1.0 / 255.0, cv::Size(), cv::Scalar(), true, false);
    auto t0 = std::chrono::steady_clock::now();
    d->net.setInput(d->blob);
    d->net.forward(d->outs, d->out_names);
    double ms = ms_since(t0);
    for (const cv::Mat &o : d->outs)
        decode(layout_of(d, o), d->n_classes, thr, class_filter, d->cands);
    return ms;
}

double run_hog(vg_detector *d, const cv::Mat &frame, float thr, int class_filter)
{
    double s = (double)kHogSide / std::max(frame.cols, frame.rows);
    const cv::Mat *src = &frame;
    if (std::fabs(s - 1.0) > 1e-3) {
        cv::Size size((int)std::lround(frame.cols * s), (int)std::lround(frame.rows * s));
        resize_to(frame, d->resized, size);
        src = &d->resized;
    }
    std::vector<cv::Rect> found;
    std::vector<double> weights;
    auto t0 = std::chrono::steady_clock::now();
    if (src->cols >= d->hog.winSize.width && src->rows >= d->hog.winSize.height)
        d->hog.detectMultiScale(*src, found, weights, 0.0, cv::Size(8, 8), cv::Size(16, 16), 1.1,
                                2.0, false);
    double ms = ms_since(t0);
    cv::Rect2d whole(0, 0, 1, 1);
    for (size_t i = 0; i < found.size() && i < weights.size(); i++) {
        float conf = (float)(1.0 / (1.0 + std::exp(-2.0 * (weights[i] - 1.0))));
        const cv::Rect &r = found[i];
        cv::Rect2d box = cv::Rect2d((double)r.x / src->cols, (double)r.y / src->rows,
                                    (double)r.width / src->cols, (double)r.height / src->rows) &
                         whole;
        if (conf >= thr && class_filter <= 0 && box.area() > 0) d->cands.push_back({0, conf, box});
    }
    return ms;
}

int detector_run(vg_detector *d, const uint8_t *bgr, int width, int height, int stride, float thr,
                 int class_filter, vg_detection_t *out, size_t max_out, size_t *n_out,
                 double *forward_ms)
{
    if (!d || !valid_image(bgr, width, height, stride) || (!out && max_out) || !n_out ||
        !(thr >= 0.0f))
        return VG_EINVAL;
    *n_out = 0;
    cv::Mat frame = wrap(bgr, width, height, stride);
    d->cands.clear();
    double ms = d->kind == Kind::hog ? run_hog(d, frame, thr, class_filter)
                                     : run_net(d, frame, thr, class_filter);
    if (forward_ms) *forward_ms = ms;
    *n_out = suppress(d, out, max_out);
    return VG_OK;
}

} // namespace

extern "C" int vg_detector_new(const vg_detector_spec_t *spec, vg_detector_t **out, char *err,
                               size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    int rc = guarded("vg_detector_new", [&] { return detector_new(spec, out, err, errlen); });
    if (rc == VG_EIO && err && errlen && !err[0])
        fail(err, errlen, rc, "model %s: OpenCV failed while loading (see log)",
             spec && spec->model_id ? spec->model_id : "?");
    return rc;
}

extern "C" void vg_detector_free(vg_detector_t *d)
{
    delete d;
}

extern "C" int vg_detector_run(vg_detector_t *d, const uint8_t *bgr, int width, int height,
                               int stride, float conf_threshold, int class_filter,
                               vg_detection_t *out, size_t max_out, size_t *n_out,
                               double *forward_ms)
{
    return guarded("vg_detector_run", [&] {
        return detector_run(d, bgr, width, height, stride, conf_threshold, class_filter, out,
                            max_out, n_out, forward_ms);
    });
}

extern "C" int vg_detector_num_classes(const vg_detector_t *d)
{
    return d ? d->n_classes : 0;
}

extern "C" int vg_detector_input_size(const vg_detector_t *d)
{
    return d ? d->input_size : 0;
}

extern "C" const char *vg_detector_label(const vg_detector_t *d, int class_id)
{
    if (!d || class_id < 0 || class_id >= (int)d->labels.size()) return nullptr;
    return d->labels[class_id].c_str();
}

extern "C" int vg_detector_class_id(const vg_detector_t *d, const char *label)
{
    for (size_t i = 0; d && label && i < d->labels.size(); i++)
        if (d->labels[i] == label) return (int)i;
    return VG_ENOTFOUND;
}

extern "C" void vg_detector_set_threads(int n)
{
    guarded("vg_detector_set_threads", [&] {
        cv::setNumThreads(n);
        return VG_OK;
    });
}

/* ------------------------------------------------------------------ motion ---- */

struct vg_motion {
    cv::Mat scratch, prev, cur, mask;
    bool have_prev = false;
};

namespace
{

const double kMotionDiff = 25.0;     /* grey levels that count as a change */
const double kMotionMinArea = 0.001; /* smallest box reported, fraction of the image */

int motion_run(vg_motion *m, const uint8_t *bgr, int width, int height, int stride, float *score,
               vg_box_t *boxes, size_t max_boxes, size_t *n_boxes)
{
    if (!m || !valid_image(bgr, width, height, stride) || !score || !n_boxes ||
        (!boxes && max_boxes))
        return VG_EINVAL;
    *score = 0.0f;
    *n_boxes = 0;
    small_gray(wrap(bgr, width, height, stride), m->scratch, m->cur);
    bool compare = m->have_prev && m->prev.size() == m->cur.size();
    m->have_prev = true;
    std::swap(m->prev, m->cur); /* prev now holds this image, cur the previous */
    if (!compare) return VG_OK;
    cv::absdiff(m->prev, m->cur, m->mask);
    cv::threshold(m->mask, m->mask, kMotionDiff, 255, cv::THRESH_BINARY);
    double total = (double)m->mask.total();
    *score = (float)(cv::countNonZero(m->mask) / total);
    if (*score <= 0.0f) return VG_OK;
    cv::dilate(m->mask, m->mask, cv::Mat(), cv::Point(-1, -1), 2);
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(m->mask, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    std::vector<cv::Rect> rects;
    for (const auto &c : contours) {
        cv::Rect r = cv::boundingRect(c);
        if (r.area() >= kMotionMinArea * total) rects.push_back(r);
    }
    std::sort(rects.begin(), rects.end(),
              [](const cv::Rect &a, const cv::Rect &b) { return a.area() > b.area(); });
    float sw = (float)m->mask.cols, sh = (float)m->mask.rows;
    for (size_t i = 0; i < rects.size() && i < max_boxes; i++) {
        const cv::Rect &r = rects[i];
        boxes[i] = {r.x / sw, r.y / sh, r.width / sw, r.height / sh};
        *n_boxes = i + 1;
    }
    return VG_OK;
}

} // namespace

extern "C" vg_motion_t *vg_motion_new(void)
{
    vg_motion *m = new (std::nothrow) vg_motion;
    VG_CHECK(m != nullptr);
    return m;
}

extern "C" void vg_motion_free(vg_motion_t *m)
{
    delete m;
}

extern "C" int vg_motion_run(vg_motion_t *m, const uint8_t *bgr, int width, int height, int stride,
                             float *score, vg_box_t *boxes, size_t max_boxes, size_t *n_boxes)
{
    return guarded("vg_motion_run", [&] {
        return motion_run(m, bgr, width, height, stride, score, boxes, max_boxes, n_boxes);
    });
}

/* -------------------------------------------------------------------- flow ---- */

struct vg_flow {
    cv::Mat scratch, prev, cur, flow;
    bool have_prev = false;
};

namespace
{

int flow_run(vg_flow *f, const uint8_t *bgr, int width, int height, int stride, float *mag,
             float *dir)
{
    if (!f || !valid_image(bgr, width, height, stride) || !mag || !dir) return VG_EINVAL;
    *mag = 0.0f;
    *dir = 0.0f;
    small_gray(wrap(bgr, width, height, stride), f->scratch, f->cur);
    bool compare = f->have_prev && f->prev.size() == f->cur.size();
    f->have_prev = true;
    std::swap(f->prev, f->cur); /* prev now holds this image, cur the previous */
    if (!compare) return VG_OK;
    cv::calcOpticalFlowFarneback(f->cur, f->prev, f->flow, 0.5, 3, 15, 3, 5, 1.2, 0);
    double sum_mag = 0.0, sum_x = 0.0, sum_y = 0.0;
    for (int y = 0; y < f->flow.rows; y++) {
        const cv::Point2f *row = f->flow.ptr<cv::Point2f>(y);
        for (int x = 0; x < f->flow.cols; x++) {
            sum_mag += std::hypot(row[x].x, row[x].y);
            sum_x += row[x].x;
            sum_y += row[x].y;
        }
    }
    *mag = (float)(sum_mag / (double)f->flow.total());
    if (std::hypot(sum_x, sum_y) > 1e-9) {
        double deg = std::atan2(sum_y, sum_x) * 180.0 / M_PI;
        *dir = (float)(deg < 0.0 ? deg + 360.0 : deg);
        if (*dir >= 360.0f) *dir = 0.0f;
    }
    return VG_OK;
}

} // namespace

extern "C" vg_flow_t *vg_flow_new(void)
{
    vg_flow *f = new (std::nothrow) vg_flow;
    VG_CHECK(f != nullptr);
    return f;
}

extern "C" void vg_flow_free(vg_flow_t *f)
{
    delete f;
}

extern "C" int vg_flow_run(vg_flow_t *f, const uint8_t *bgr, int width, int height, int stride,
                           float *mean_magnitude, float *direction_deg)
{
    return guarded("vg_flow_run", [&] {
        return flow_run(f, bgr, width, height, stride, mean_magnitude, direction_deg);
    });
}

/* ---------------------------------------------------- snapshots and images ---- */

namespace
{

/* Privacy masks: the one implementation is vg_privacy_apply (privacy.c). */
void black_out(cv::Mat &img, const vg_mask_t *masks, size_t n)
{
    CV_Assert(img.type() == CV_8UC3);
    vg_privacy_apply(img.data, img.cols, img.rows, (int)img.step, masks, n);
}

void draw_boxes(cv::Mat &img, const vg_detection_t *boxes, size_t n)
{
    const cv::Scalar color(0, 220, 0);
    int thick = std::max(1, img.cols / 320);
    double font = 0.4 * std::max(1.0, img.cols / 320.0);
    for (size_t i = 0; i < n; i++) {
        const vg_detection_t &b = boxes[i];
        cv::Rect r((int)std::lround(b.x * img.cols), (int)std::lround(b.y * img.rows),
                   (int)std::lround(b.w * img.cols), (int)std::lround(b.h * img.rows));
        cv::rectangle(img, r, color, thick);
        char text[64];
        snprintf(text, sizeof(text), "%.*s %.2f", (int)sizeof(b.label), b.label, b.confidence);
        int base = 0;
        cv::Size ts = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, font, 1, &base);
        cv::Point org(r.x, std::max(ts.height + 2, r.y - 2));
        cv::rectangle(img, cv::Rect(org.x, org.y - ts.height - 2, ts.width + 2, ts.height + 4),
                      color, cv::FILLED);
        cv::putText(img, text, org + cv::Point(1, 0), cv::FONT_HERSHEY_SIMPLEX, font,
                    cv::Scalar::all(0), 1, cv::LINE_AA);
    }
}

uint8_t *copy_out(const uint8_t *data, size_t len)
{
    uint8_t *p = (uint8_t *)vg_xmalloc(len);
    memcpy(p, data, len);
    return p;
}

int snapshot_jpeg(const uint8_t *bgr, int width, int height, int stride, int out_width,
                  const vg_detection_t *boxes, size_t n_boxes, const vg_mask_t *masks,
                  size_t n_masks, int quality, uint8_t **jpeg, size_t *len)
{
    if (!valid_image(bgr, width, height, stride) || !jpeg || !len || (!boxes && n_boxes) ||
        (!masks && n_masks) || quality > 100)
        return VG_EINVAL;
    cv::Mat img = wrap(bgr, width, height, stride).clone();
    black_out(img, masks, n_masks);
    if (out_width > 0 && out_width < width) {
        int h = std::max(1, (int)std::lround((double)height * out_width / width));
        cv::Mat small;
        cv::resize(img, small, cv::Size(out_width, h), 0, 0, cv::INTER_AREA);
        img = small;
    }
    draw_boxes(img, boxes, n_boxes);
    black_out(img, masks, n_masks);
    std::vector<uchar> buf;
    std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, quality > 0 ? quality : 85};
    if (!cv::imencode(".jpg", img, buf, params) || buf.empty()) return VG_EIO;
    *jpeg = copy_out(buf.data(), buf.size());
    *len = buf.size();
    return VG_OK;
}

int image_out(const cv::Mat &img, uint8_t **bgr, int *width, int *height)
{
    size_t row = (size_t)img.cols * 3;
    uint8_t *p = (uint8_t *)vg_xmalloc(row * (size_t)img.rows);
    for (int y = 0; y < img.rows; y++)
        memcpy(p + row * (size_t)y, img.ptr(y), row);
    *bgr = p;
    *width = img.cols;
    *height = img.rows;
    return VG_OK;
}

} // namespace

extern "C" int vg_snapshot_jpeg(const uint8_t *bgr, int width, int height, int stride,
                                int out_width, const vg_detection_t *boxes, size_t n_boxes,
                                const vg_mask_t *masks, size_t n_masks, int quality, uint8_t **jpeg,
                                size_t *len)
{
    return guarded("vg_snapshot_jpeg", [&] {
        return snapshot_jpeg(bgr, width, height, stride, out_width, boxes, n_boxes, masks, n_masks,
                             quality, jpeg, len);
    });
}

extern "C" int vg_image_load(const char *path, uint8_t **bgr, int *width, int *height)
{
    return guarded("vg_image_load", [&] {
        if (!path || !bgr || !width || !height) return (int)VG_EINVAL;
        quiet_opencv();
        cv::Mat img = cv::imread(path, cv::IMREAD_COLOR);
        if (img.empty()) return access(path, F_OK) == 0 ? (int)VG_EIO : (int)VG_ENOTFOUND;
        return image_out(img, bgr, width, height);
    });
}

extern "C" int vg_image_decode(const uint8_t *data, size_t len, uint8_t **bgr, int *width,
                               int *height)
{
    return guarded("vg_image_decode", [&] {
        if (!data || !len || len > (size_t)INT32_MAX || !bgr || !width || !height)
            return (int)VG_EINVAL;
        quiet_opencv();
        cv::Mat in(1, (int)len, CV_8UC1, const_cast<uint8_t *>(data));
        cv::Mat img = cv::imdecode(in, cv::IMREAD_COLOR);
        if (img.empty()) return (int)VG_EIO;
        return image_out(img, bgr, width, height);
    });
}
