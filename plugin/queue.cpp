// queue.cpp — the provisioned hook: seal into the spool, enqueue, wake (see queue.hpp).
//
// Must never: open a spool entry, block the login on anything but a file write and one
// short store transaction, or lose the job because sealing failed.
// Errors: returned to the engine, which logs them; the login answer stays OK.
#include "mailferry/queue.hpp"

#include "file_util.hpp"
#include "mailferry/log.hpp"
#include "mailferry/spool.hpp"

#include <cerrno>
#include <fcntl.h>
#include <memory>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::queue {
namespace {

class CopyQueue {
  public:
    CopyQueue(const Config& cfg, Store& store)
        : cfg_(cfg), store_(store), sealer_(cfg.spool.public_key_file), spool_(cfg.spool.dir) {}

    Result<void> on_provisioned(const Identity& id, const Secret& password) {
        Result<void> sealed = spool::store_password(sealer_, spool_, id.canonical, password);
        EnqueueRequest req;
        req.account = id.canonical;
        req.provider = id.provider != nullptr ? id.provider->name : std::string();
        req.source_login = id.old_login;
        req.kind = JobKind::copy;
        req.priority = kPriorityLogin;
        auto job = store_.enqueue_job(req);
        if (job) {
            if (auto w = wake_worker(cfg_.worker.wake_file); !w) {
                log::debug("copy queue: " + w.error().message());
            }
            if (cfg_.worker.spawn) {
                if (auto s = ensure_worker(cfg_); !s) {
                    log::warning("copy queue: start a worker: " + s.error().message());
                }
            }
        }
        if (!sealed) {
            Error e = sealed.error();
            e.what = "seal the password of " + id.canonical + " for the copy: " + e.what;
            return e;
        }
        if (!job) {
            return job.error();
        }
        return {};
    }

  private:
    const Config& cfg_;
    Store& store_;
    spool::Sealer sealer_;
    spool::Spool spool_;
};

} // namespace

Millis backoff(const WorkerConfig& w, unsigned attempts) {
    Millis d = w.retry_min;
    for (unsigned i = 1; i < attempts && d < w.retry_max; ++i) {
        d *= 2;
    }
    return std::min(d, w.retry_max);
}

ProvisionedHook make_provisioned_hook(const Config& cfg, Store& store) {
    auto q = std::make_shared<CopyQueue>(cfg, store);
    return
        [q](const Identity& id, const Secret& password) { return q->on_provisioned(id, password); };
}

Result<void> wake_worker(const std::string& wake_file) {
    int fd = ::open(wake_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0660);
    if (fd < 0) {
        return make_error("open(" + wake_file + ") failed", errno_text(errno), Scope::server,
                          Retry::later);
    }
    // Group-writable whatever the creator's umask: a wake file left 0640 by the worker (or
    // root) would refuse every later wake-up from the login side. Not ours: leave it.
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_uid == ::geteuid() && (st.st_mode & 0777) != 0660) {
        (void)::fchmod(fd, 0660);
    }
    // The content does not matter; the close after a write is what inotify and systemd see.
    ssize_t n = ::write(fd, "1\n", 2);
    int e = errno;
    ::close(fd);
    if (n != 2) {
        return make_error("write(" + wake_file + ") failed", errno_text(e), Scope::server,
                          Retry::later);
    }
    return {};
}

std::string worker_lock_path(const Config& cfg) {
    return cfg.store.lock_dir + "/worker.lock";
}

Result<bool> worker_running(const Config& cfg) {
    std::string path = worker_lock_path(cfg);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            return false;
        }
        return make_error("open(" + path + ") failed", errno_text(errno), Scope::server,
                          Retry::later);
    }
    bool held = false;
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
        held = errno == EWOULDBLOCK;
        if (!held) {
            int e = errno;
            ::close(fd);
            return make_error("flock(" + path + ") failed", errno_text(e), Scope::server,
                              Retry::later);
        }
    }
    ::close(fd); // drops our probe lock, if we got it
    return held;
}

} // namespace mf::queue
