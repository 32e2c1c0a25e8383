// worker.cpp — the worker's loop: start-up checks, claim, lease renewal, wake-ups, stop.
//
// One thread claims and supervises; each claimed job runs on its own thread
// (worker_job.cpp). The loop sleeps in poll() on three things: the stop-signal pipe, the
// job threads' pipe, and inotify on the wake file's directory (the login side touches it
// after each enqueue), with poll_interval as the longest sleep, so a first login's job is
// claimed within milliseconds when a worker runs, and within poll_interval at worst.
//
// Must never: claim more than `copies` jobs, let a lease lapse while its copy runs, or
// leave a job claimed when stopping cleanly (it is given back).
// Errors: start-up problems are returned; store trouble while running (busy, locked) is
// logged and retried at the next turn of the loop — the worker keeps going.
#include "worker_impl.hpp"

#include "file_lock.hpp"
#include "file_util.hpp"
#include "mailferry/log.hpp"
#include "spool_io.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mf::worker {
namespace {

std::atomic<bool> g_stop{false};
int g_stop_pipe[2] = {-1, -1};

void on_stop_signal(int /*sig*/) {
    int saved = errno;
    g_stop.store(true);
    if (g_stop_pipe[1] >= 0) {
        [[maybe_unused]] ssize_t n = ::write(g_stop_pipe[1], "s", 1);
    }
    errno = saved;
}

void drain(int fd) {
    char buf[4096];
    while (::read(fd, buf, sizeof buf) > 0) {
    }
}

std::string make_id() {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    unsigned char rnd[3];
    randombytes_buf(rnd, sizeof rnd);
    char tail[8];
    std::snprintf(tail, sizeof tail, "%02x%02x%02x", rnd[0], rnd[1], rnd[2]);
    return std::string(host) + ":" + std::to_string(::getpid()) + ":" + tail;
}

// The host lock: lock_dir/worker.lock, flock'd for the worker's life, holding its PID.
Result<void> take_host_lock(Worker::Impl& w) {
    const std::string& dir = w.cfg.store.lock_dir;
    if (auto r = spool::detail::ensure_dir(dir, 02770); !r) {
        return r;
    }
    std::string path = dir + "/worker.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0660);
    if (fd < 0) {
        return make_error("open(" + path + ") failed", errno_text(errno), Scope::server,
                          Retry::later);
    }
    // A worker that is just exiting (idle) still holds it for a moment: wait a little.
    for (int i = 0; i < 40; ++i) {
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            w.lock_fd = fd;
            std::string pid = std::to_string(::getpid()) + "\n";
            if (::ftruncate(fd, 0) == 0) {
                [[maybe_unused]] ssize_t n = ::pwrite(fd, pid.data(), pid.size(), 0);
            }
            return {};
        }
        if (errno != EWOULDBLOCK && errno != EINTR) {
            int e = errno;
            ::close(fd);
            return make_error("flock(" + path + ") failed", errno_text(e), Scope::server,
                              Retry::later);
        }
        ::usleep(50 * 1000);
    }
    char buf[32] = {};
    if (::pread(fd, buf, sizeof buf - 1, 0) > 0) {
        w.other_pid = std::atoi(buf);
    }
    ::close(fd);
    return {};
}

// `key` names the setting in messages ("target.master_password_file").
Result<Secret> read_master_password(const std::string& path, const std::string& key) {
    if (auto w = secret_file_warning(path); !w.empty()) {
        log::warning(key + ": " + w);
    }
    auto text = spool::read_secret_file(path, 1024);
    if (!text) {
        Error e = text.error();
        e.what = "read " + key + ": " + e.what;
        return e;
    }
    std::string_view v = text->view();
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) {
        v.remove_suffix(1);
    }
    Secret s(v);
    if (s.empty()) {
        return make_error("read " + key + " " + path, "the file is empty", Scope::config);
    }
    return s;
}

} // namespace

Worker::Impl::~Impl() {
    for (int fd : {lock_fd, inotify_fd, wake_pipe[0], wake_pipe[1]}) {
        if (fd >= 0) {
            ::close(fd);
        }
    }
}

void Worker::Impl::notify_loop() {
    if (wake_pipe[1] >= 0) {
        [[maybe_unused]] ssize_t n = ::write(wake_pipe[1], "j", 1);
    }
}

Worker::Worker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Worker::~Worker() {
    for (auto& r : impl_->running) {
        r->cancel = true;
    }
    for (auto& r : impl_->running) {
        if (r->thread.joinable()) {
            r->thread.join();
        }
    }
}

Result<std::unique_ptr<Worker>> Worker::create(const Config& cfg, const Options& opts) {
    auto w = std::make_unique<Impl>();
    w->cfg = cfg;
    w->opts = opts;
    w->id = opts.id.empty() ? make_id() : opts.id;
    if (!w->cfg.target.configured) {
        return make_error("start the worker: " + cfg.source_path,
                          "the config has no [target] section: there is nowhere to copy to",
                          Scope::config);
    }
    auto ident = IdentityMap::create(w->cfg);
    if (!ident) {
        return ident.error();
    }
    w->identity = std::move(*ident);
    // The secret key first: a worker that cannot open entries must not claim jobs.
    auto opener = spool::Opener::load(w->cfg.spool.secret_key_file);
    if (!opener) {
        return opener.error();
    }
    w->opener.emplace(std::move(*opener));
    w->spool.emplace(w->cfg.spool.dir);
    if (!w->cfg.target.master_password_file.empty()) {
        auto pw =
            read_master_password(w->cfg.target.master_password_file, "target.master_password_file");
        if (!pw) {
            return pw.error();
        }
        w->master_password.emplace(std::move(*pw));
    }
    for (const auto& p : w->cfg.providers) {
        if (p.master_password_file.empty()) {
            continue;
        }
        auto pw = read_master_password(p.master_password_file,
                                       "provider " + p.name + ": master_password_file");
        if (!pw) {
            return pw.error();
        }
        w->source_masters.emplace(p.name, std::move(*pw));
    }
    if (auto r = spool::detail::ensure_dir(w->cfg.worker.state_dir, 0700); !r) {
        return r.error();
    }
    if (opts.host_lock) {
        if (auto r = take_host_lock(*w); !r) {
            return r.error();
        }
        if (w->lock_fd < 0) {
            return std::unique_ptr<Worker>(new Worker(std::move(w))); // run() says who runs
        }
    }
    auto store = open_sqlite_store(w->cfg.store.path, w->cfg.store.busy_timeout);
    if (!store) {
        return store.error();
    }
    w->store = std::move(*store);
    if (::pipe2(w->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        return make_error("pipe() failed", errno_text(errno), Scope::internal);
    }
    w->inotify_fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (w->inotify_fd >= 0) {
        std::string dir = dir_of(w->cfg.worker.wake_file);
        // On a fresh install the spool directory (the wake file's by default) appears only
        // at the first seal: made now, as the spool makes it, or the worker would not be
        // watching and each new job would wait for poll_interval.
        if (auto r = spool::detail::ensure_dir(dir, 02770); !r) {
            log::info("worker: " + r.error().message());
        }
        if (::inotify_add_watch(w->inotify_fd, dir.c_str(),
                                IN_CLOSE_WRITE | IN_MOVED_TO | IN_ATTRIB) < 0) {
            log::info("worker: not watching " + dir + " (" + errno_text(errno) +
                      "): polling every " + format_duration(w->cfg.worker.poll_interval));
            ::close(w->inotify_fd);
            w->inotify_fd = -1;
        }
    }
    return std::unique_ptr<Worker>(new Worker(std::move(w)));
}

Result<Exit> Worker::run(const std::atomic<bool>& stop) {
    Impl& w = *impl_;
    if (w.opts.host_lock && w.lock_fd < 0) {
        log::info("worker: another worker runs on this host" +
                  (w.other_pid > 0 ? " (pid " + std::to_string(w.other_pid) + ")" : std::string()) +
                  ": leaving the work to it");
        return Exit::another_runs;
    }
    const WorkerConfig& wc = w.cfg.worker;
    const unsigned copies = w.copies();
    log::info("worker " + w.id + ": started; " + std::to_string(copies) + " copies at once, " +
              std::to_string(wc.max_copies_per_server) + " per old server across workers; key " +
              w.opener->key_id());
    using Clock = std::chrono::steady_clock;
    const Millis renew_every = std::max(Millis(100), wc.lease / 3);
    auto last_renew = Clock::now();
    auto idle_since = Clock::now();
    auto last_sweep = Clock::time_point{};
    std::string last_store_error;

    auto store_trouble = [&](const Error& e) {
        // Said once per distinct problem, not at every turn of the loop.
        if (e.message() != last_store_error) {
            log::warning("worker: store: " + e.message() + " (will retry)");
            last_store_error = e.message();
        }
    };

    for (;;) {
        // Reap finished copies.
        for (auto it = w.running.begin(); it != w.running.end();) {
            if ((*it)->done) {
                (*it)->thread.join();
                it = w.running.erase(it);
            } else {
                ++it;
            }
        }
        if (stop) {
            break;
        }
        auto now = Clock::now();
        if (now - last_sweep >= std::chrono::seconds(30)) {
            auto added = w.store->enqueue_missing_jobs(kPriorityRecovered, now_unix_ms());
            if (!added) {
                store_trouble(added.error());
            } else {
                last_sweep = now;
                if (*added > 0) {
                    log::info("worker: queued " + std::to_string(*added) +
                              " account(s) that needed a copy but had no job");
                }
            }
        }
        bool claimed = false;
        bool claim_failed = false;
        while (w.running.size() < copies && !stop) {
            ClaimRequest req;
            req.worker = w.id;
            req.now = now_unix_ms();
            req.lease = wc.lease;
            req.per_provider = wc.max_copies_per_server;
            auto job = w.store->claim_job(req);
            if (!job) {
                store_trouble(job.error());
                claim_failed = true;
                break;
            }
            last_store_error.clear();
            if (!job->has_value()) {
                break;
            }
            auto r = std::make_unique<Running>();
            r->job = std::move(**job);
            Running* rp = r.get();
            w.running.push_back(std::move(r));
            rp->thread = std::thread([&w, rp] {
                w.run_job(*rp);
                rp->done = true;
                w.notify_loop();
            });
            claimed = true;
        }
        now = Clock::now();
        if (!w.running.empty() || claimed) {
            idle_since = now;
        } else {
            if (w.opts.once && !claim_failed) {
                log::info("worker " + w.id + ": nothing to do; exiting (--once)");
                return Exit::done;
            }
            if (w.opts.idle_exit && now - idle_since >= *w.opts.idle_exit) {
                log::info("worker " + w.id + ": idle for " + format_duration(*w.opts.idle_exit) +
                          "; exiting");
                return Exit::done;
            }
        }
        if (now - last_renew >= renew_every) {
            last_renew = now;
            for (auto& r : w.running) {
                if (r->done || r->lost) {
                    continue;
                }
                auto ok = w.store->renew_job(r->job.id, w.id, now_unix_ms() + wc.lease.count());
                if (!ok && ok.error().scope == Scope::account) {
                    log::warning("worker: " + r->job.account + ": " + ok.error().message() +
                                 "; stopping this copy");
                    r->lost = true;
                    r->cancel = true;
                } else if (!ok) {
                    store_trouble(ok.error());
                }
            }
        }
        // Sleep until a signal, a finished copy, a wake-up from the login side, the next
        // renewal or poll_interval.
        Millis wait = std::min(wc.poll_interval, renew_every);
        if (w.opts.idle_exit && w.running.empty()) {
            auto left =
                std::chrono::duration_cast<Millis>(*w.opts.idle_exit - (Clock::now() - idle_since));
            wait = std::max(Millis(10), std::min(wait, left));
        }
        pollfd fds[3];
        nfds_t n = 0;
        fds[n++] = {w.wake_pipe[0], POLLIN, 0};
        if (g_stop_pipe[0] >= 0) {
            fds[n++] = {g_stop_pipe[0], POLLIN, 0};
        }
        if (w.inotify_fd >= 0) {
            fds[n++] = {w.inotify_fd, POLLIN, 0};
        }
        if (::poll(fds, n, static_cast<int>(wait.count())) > 0) {
            for (nfds_t i = 0; i < n; ++i) {
                if ((fds[i].revents & POLLIN) != 0) {
                    drain(fds[i].fd);
                }
            }
        }
    }

    log::info("worker " + w.id + ": stopping; " + std::to_string(w.running.size()) +
              " copy(ies) asked to stop at the next safe point");
    for (auto& r : w.running) {
        r->cancel = true;
    }
    for (auto& r : w.running) {
        r->thread.join();
    }
    w.running.clear();
    log::info("worker " + w.id + ": stopped");
    return Exit::stopped;
}

const std::atomic<bool>& install_stop_signals() {
    if (g_stop_pipe[0] < 0) {
        if (::pipe2(g_stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
            g_stop_pipe[0] = g_stop_pipe[1] = -1;
        }
    }
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    ::sigemptyset(&sa.sa_mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
        ::sigaction(sig, &sa, nullptr);
    }
    ::signal(SIGPIPE, SIG_IGN);
    return g_stop;
}

Result<spool::RotateReport> rotate_keys(const Config& cfg, const spool::KeyFiles& files) {
    spool::Spool sp(cfg.spool.dir);
    const std::string lock_dir = cfg.store.lock_dir;
    const Millis wait = cfg.store.busy_timeout + Millis(30000);
    spool::AccountLock lock = [lock_dir,
                               wait](const std::string& account) -> Result<std::shared_ptr<void>> {
        auto l = FileLock::acquire(account_lock_path(lock_dir, account), wait);
        if (!l) {
            return l.error();
        }
        return std::shared_ptr<void>(std::make_shared<FileLock>(std::move(*l)));
    };
    struct stat st {};
    if (::stat(lock_dir.c_str(), &st) != 0) {
        lock = nullptr; // no login has happened on this host yet: nobody to exclude
    }
    return spool::rotate_keys(files, sp, lock);
}

} // namespace mf::worker
