/* journal.h — the events journal: every event transition appended as one JSON line to
 * `events_file`, fsynced, the file rotated at a size limit (file -> file.1 -> ... ->
 * file.<keep>, the oldest dropped); and, at start, the events still open read back so
 * the engine can restore and announce them again.
 *
 * Plain blocking file I/O: a vg_journal_t belongs to one thread at a time (the writer
 * thread, never the loop). vg_journal_restore touches no journal object and may run on
 * any thread before the writer starts. */
#ifndef VIGIL_JOURNAL_H
#define VIGIL_JOURNAL_H

#include <stddef.h>

#include "vigil/events.h"

#define VG_JOURNAL_LINE_MAX (64 * 1024) /* longer lines are refused, and skipped on read */

typedef struct {
    const char *path; /* borrowed for vg_journal_open only */
    size_t max_bytes; /* rotate before a line would take the file past this; 0: 16 MiB */
    int keep;         /* rotated files kept, 1..99; 0: 3 */
    bool no_fsync;    /* tests only */
} vg_journal_cfg_t;

typedef struct vg_journal vg_journal_t;

/* Opens (creating, mode 0640) the journal for appending; a torn last line left by a
 * crash is closed with a newline first. 0 and *out (caller frees with
 * vg_journal_close), or VG_EINVAL / VG_EIO with a message naming the file in err. */
int vg_journal_open(const vg_journal_cfg_t *cfg, vg_journal_t **out, char *err, size_t errlen);
/* Appends one line (a newline is added; `line` must hold none) and fsyncs, rotating
 * first when the file would grow past max_bytes. 0, VG_EINVAL (a newline inside, or
 * longer than VG_JOURNAL_LINE_MAX) or VG_EIO (errno kept). */
int vg_journal_append(vg_journal_t *j, const char *line);
/* Appends an event transition as its payload JSON. */
int vg_journal_append_event(vg_journal_t *j, const vg_event_t *e, const char *instance_id,
                            const char *snapshot_base);
void vg_journal_close(vg_journal_t *j); /* NULL ok */
/* Bytes in the current file. */
size_t vg_journal_size(const vg_journal_t *j);

/* Reads file.<keep> ... file.1, file (oldest first) and appends to out the latest state
 * of every event not ended, in the order they first appear; instant events (entries and
 * exits) are never open. Missing files are fine; lines that are not events are skipped
 * and counted in *bad (NULL ok). 0, or VG_EIO when a file exists but cannot be read. */
int vg_journal_restore(const char *path, int keep, vg_event_list_t *out, size_t *bad);

#endif
