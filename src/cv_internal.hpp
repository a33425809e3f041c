/* cv_internal.hpp — helpers shared by vigil's C++ files (detector.cpp, pose.cpp): the
 * exception guard every extern "C" entry point runs through, error-message formatting,
 * image wrapping and checks, the model-file check, and silencing OpenCV's own logging.
 * Internal to src/; no thread state (quiet_opencv runs once per process). */
#ifndef VIGIL_CV_INTERNAL_HPP
#define VIGIL_CV_INTERNAL_HPP

extern "C" {
#define _Noreturn [[noreturn]] /* common.h is C11; this file is C++17 */
#include "vigil/common.h"
#undef _Noreturn
#include "vigil/log.h"
}

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgproc.hpp>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <sys/stat.h>

namespace vg_cv
{

const int kMaxSide = 1 << 15;

/* Runs body; OpenCV and standard exceptions become VG_EIO (logged), allocation
 * failure aborts like vg_xmalloc. */
template <typename F> int guarded(const char *where, F &&body)
{
    try {
        return body();
    } catch (const std::bad_alloc &) {
        vg_die(__FILE__, __LINE__, "std::bad_alloc");
    } catch (const cv::Exception &e) {
        VG_ERROR("detector", "opencv_error", "{s:s, s:s}", "where", where, "error", e.what());
    } catch (const std::exception &e) {
        VG_ERROR("detector", "exception", "{s:s, s:s}", "where", where, "error", e.what());
    } catch (...) {
        VG_ERROR("detector", "exception", "{s:s, s:s}", "where", where, "error", "unknown");
    }
    return VG_EIO;
}

inline void quiet_opencv()
{
    static std::once_flag once;
    std::call_once(once,
                   [] { cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT); });
}

__attribute__((format(printf, 4, 5))) inline int fail(char *err, size_t errlen, int code,
                                                      const char *fmt, ...)
{
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* OpenCV's short message, first line only. */
inline std::string brief(const cv::Exception &e)
{
    std::string s = e.err.empty() ? e.what() : e.err;
    return s.substr(0, s.find('\n'));
}

inline bool valid_image(const uint8_t *bgr, int width, int height, int stride)
{
    return bgr && width > 0 && height > 0 && width <= kMaxSide && height <= kMaxSide &&
           stride >= 3 * width;
}

inline cv::Mat wrap(const uint8_t *bgr, int width, int height, int stride)
{
    return cv::Mat(height, width, CV_8UC3, const_cast<uint8_t *>(bgr), (size_t)stride);
}

inline void resize_to(const cv::Mat &src, cv::Mat &dst, cv::Size size)
{
    bool shrink = size.width <= src.cols && size.height <= src.rows;
    cv::resize(src, dst, size, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
}

/* Checks a path names a readable regular file; fills err naming it otherwise. */
inline int check_file(const char *what, const char *path, char *err, size_t errlen, off_t *size)
{
    if (!path || !*path) return fail(err, errlen, VG_EINVAL, "%s: no path given", what);
    struct stat st;
    if (stat(path, &st) != 0) {
        int code = errno == ENOENT ? VG_ENOTFOUND : VG_EIO;
        return fail(err, errlen, code, "%s %s: %s", what, path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return fail(err, errlen, VG_EIO, "%s %s: not a regular file", what, path);
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, VG_EIO, "%s %s: %s", what, path, strerror(errno));
    fclose(f);
    if (size) *size = st.st_size;
    return VG_OK;
}

} // namespace vg_cv

#endif
