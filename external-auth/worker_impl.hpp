// worker_impl.hpp — the worker's insides, shared by worker.cpp (the loop: claim, renew,
// wait, stop) and worker_job.cpp (one run of one job). Private to the worker.
#pragma once

#include "mailferry/identity.hpp"
#include "mailferry/secret.hpp"
#include "mailferry/store.hpp"
#include "worker.hpp"

#include <list>
#include <map>
#include <thread>

namespace mf::worker {

// One job in flight, on its own thread.
struct Running {
    Job job;
    std::thread thread;
    std::atomic<bool> cancel{false}; // the copier polls it between messages
    std::atomic<bool> lost{false};   // our lease was taken over: report nothing
    std::atomic<bool> done{false};
};

struct Worker::Impl {
    Config cfg;
    Options opts;
    std::string id;
    IdentityMap identity;
    std::unique_ptr<Store> store;
    std::optional<spool::Opener> opener;
    std::optional<spool::Spool> spool;
    std::optional<Secret> master_password;        // target.master_password_file
    std::map<std::string, Secret> source_masters; // provider name → its master password
    int lock_fd = -1;
    int other_pid = 0; // holder of the host lock when we did not get it
    int inotify_fd = -1;
    int wake_pipe[2] = {-1, -1}; // job threads write a byte when they end
    std::list<std::unique_ptr<Running>> running;

    ~Impl();
    Impl() = default;
    Impl(const Impl&) = delete;
    Impl& operator=(const Impl&) = delete;

    // worker_job.cpp
    void run_job(Running& r);
    Result<Secret> sealed_password(const Job& job, const std::string& who);

    // worker.cpp
    void notify_loop();
    [[nodiscard]] unsigned copies() const {
        return opts.copies != 0 ? opts.copies : cfg.worker.copies;
    }
};

} // namespace mf::worker
