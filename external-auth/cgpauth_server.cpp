// cgpauth_server.cpp — line reader, worker pool and single writer of the CGP helper.
//
// Must never run a truncated request, answer a line twice or not at all, or keep a
// request line (it holds a password) after it has been parsed.
#include "cgpauth_server.hpp"

#include "face_io.hpp"

#include "mailferry/log.hpp"

#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <sodium.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace mf::cgp {

void LineWriter::write_line(std::string_view line) {
    std::lock_guard lock(mu_);
    if (broken_) {
        return;
    }
    if (face::write_all(fd_, line) != 0) {
        broken_ = true;
    }
}

bool LineWriter::broken() const {
    std::lock_guard lock(mu_);
    return broken_;
}

namespace {

struct Job {
    Request request;
    std::string key; // seq + keyed digest of the raw line: identical re-sends share a job
    int copies = 1;  // how many received lines wait for this answer
};

class Server {
  public:
    Server(LineWriter& out, const Handler& handler, const ServerOptions& opts)
        : out_(out), handler_(handler), opts_(opts) {
        crypto_generichash_keygen(digest_key_.data());
        unsigned n = opts_.workers == 0 ? 1 : opts_.workers;
        for (unsigned i = 0; i < n; ++i) {
            workers_.emplace_back([this] { work(); });
        }
    }

    ~Server() {
        finish();
        sodium_memzero(digest_key_.data(), digest_key_.size());
    }
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Handles one complete line. Returns false after QUIT.
    bool on_line(std::string_view line) {
        std::string_view trimmed = line;
        if (!trimmed.empty() && trimmed.back() == '\r') {
            trimmed.remove_suffix(1);
        }
        if (trimmed.empty()) {
            return true; // CGP sends none; the known helpers skip them silently too
        }
        Parsed p = parse_request(line);
        if (!p.request) {
            reject(p.seq, p.error);
            return true;
        }
        Request& r = *p.request;
        switch (r.command) {
        case Command::intf:
            out_.write_line(reply_line(r.seq, "INTF", kInterfaceVersion));
            return true;
        case Command::quit:
            quit_seq_ = r.seq;
            return false;
        case Command::sasl:
            reject(r.seq, "SASL methods are not supported: use clear-text VRFY");
            return true;
        case Command::unsupported:
            reject(r.seq, "unsupported command " + r.word);
            return true;
        case Command::vrfy:
        case Command::new_account:
            dispatch(std::move(r), line);
            return true;
        }
        return true;
    }

    // A line we cannot run: longer than the limit, or cut off by EOF.
    void on_broken_line(std::string_view seq, const std::string& reason) {
        reject(std::string(seq), reason);
    }

    // Waits for everything in flight, answers it, stops the workers; then QUIT's OK.
    void finish() {
        {
            std::unique_lock lock(mu_);
            idle_cv_.wait(lock, [this] { return active_ == 0; });
            stopping_ = true;
        }
        work_cv_.notify_all();
        for (auto& t : workers_) {
            if (t.joinable()) {
                t.join();
            }
        }
        workers_.clear();
        if (!quit_seq_.empty()) {
            out_.write_line(reply_line(quit_seq_, "OK"));
            quit_seq_.clear();
        }
    }

  private:
    void reject(const std::string& seq, const std::string& reason) {
        if (seq.empty()) {
            log::warning("cgpauth: ignored a request line: " + reason);
            return;
        }
        log::warning("cgpauth: request " + seq + ": " + reason);
        out_.write_line(reply_line(seq, "ERROR", reason));
    }

    std::string key_of(const std::string& seq, std::string_view line) {
        std::array<unsigned char, crypto_generichash_BYTES> d{};
        crypto_generichash(d.data(), d.size(), reinterpret_cast<const unsigned char*>(line.data()),
                           line.size(), digest_key_.data(), digest_key_.size());
        std::string key = seq;
        key += '\0';
        key.append(reinterpret_cast<const char*>(d.data()), d.size());
        return key;
    }

    void dispatch(Request r, std::string_view line) {
        std::string key = key_of(r.seq, line);
        std::unique_lock lock(mu_);
        if (auto it = inflight_.find(key); it != inflight_.end()) {
            ++it->second->copies; // a re-send of a running request: answer it, run it once
            log::info("cgpauth: request " + r.seq +
                      " received again while running: " + "answering both, running once");
            return;
        }
        space_cv_.wait(lock, [this] { return active_ < opts_.max_pending; });
        auto job = std::make_shared<Job>();
        job->request = std::move(r);
        job->key = std::move(key);
        inflight_.emplace(job->key, job);
        queue_.push_back(std::move(job));
        ++active_;
        lock.unlock();
        work_cv_.notify_one();
    }

    void work() {
        for (;;) {
            std::shared_ptr<Job> job;
            {
                std::unique_lock lock(mu_);
                work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                if (queue_.empty()) {
                    return; // stopping and nothing left
                }
                job = std::move(queue_.front());
                queue_.pop_front();
            }
            Answer a;
            try {
                a = handler_(job->request);
            } catch (const std::exception& e) {
                log::error(std::string("cgpauth: request ") + job->request.seq +
                           ": internal error: " + e.what());
                a = Answer{"ERROR", "internal error"};
            } catch (...) {
                a = Answer{"ERROR", "internal error"};
            }
            job->request.password.clear();
            int copies = 0;
            {
                std::lock_guard lock(mu_);
                copies = job->copies;
                inflight_.erase(job->key);
            }
            std::string line = reply_line(job->request.seq, a.word, a.text);
            for (int i = 0; i < copies; ++i) {
                out_.write_line(line);
            }
            {
                std::lock_guard lock(mu_);
                --active_;
            }
            space_cv_.notify_one();
            idle_cv_.notify_all();
        }
    }

    LineWriter& out_;
    const Handler& handler_;
    ServerOptions opts_;
    std::array<unsigned char, crypto_generichash_KEYBYTES> digest_key_{};

    std::mutex mu_;
    std::condition_variable work_cv_;
    std::condition_variable space_cv_;
    std::condition_variable idle_cv_;
    std::deque<std::shared_ptr<Job>> queue_;               // guarded by mu_
    std::map<std::string, std::shared_ptr<Job>> inflight_; // guarded by mu_
    std::size_t active_ = 0;                               // queued + running; guarded by mu_
    bool stopping_ = false;                                // guarded by mu_
    std::vector<std::thread> workers_;
    std::string quit_seq_; // reader thread only
};

} // namespace

int serve(int in_fd, LineWriter& out, const Handler& handler, const ServerOptions& opts) {
    if (sodium_init() < 0) {
        log::error("cgpauth: libsodium failed to initialise");
        return 1;
    }
    Server server(out, handler, opts);
    // The line being assembled, capped at kMaxLine + 1 bytes; reserved once so it never
    // reallocates (it may hold a password) and wiped after every line.
    std::string line;
    line.reserve(kMaxLine + 2);
    bool overlong = false;    // discarding the rest of a line longer than kMaxLine
    std::string overlong_seq; // its sequence number, taken from its start
    std::array<char, 4096> chunk{};
    bool quit = false;
    while (!quit && !out.broken()) {
        ssize_t n = ::read(in_fd, chunk.data(), chunk.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            log::error(std::string("cgpauth: read(stdin) failed: ") + std::strerror(errno));
            break;
        }
        if (n == 0) {
            break; // CGP closed our stdin
        }
        std::string_view data(chunk.data(), static_cast<std::size_t>(n));
        while (!data.empty() && !quit) {
            auto lf = data.find('\n');
            std::string_view piece =
                data.substr(0, lf == std::string_view::npos ? data.size() : lf);
            data.remove_prefix(lf == std::string_view::npos ? data.size() : lf + 1);
            if (!overlong) {
                std::size_t room = kMaxLine + 1 - line.size();
                line.append(piece.substr(0, room));
                if (line.size() > kMaxLine) {
                    overlong = true;
                    overlong_seq = std::string(leading_seq(line));
                    wipe(line.data(), line.size());
                    line.clear();
                }
            }
            if (lf == std::string_view::npos) {
                break; // the line goes on in the next chunk
            }
            if (overlong) {
                server.on_broken_line(overlong_seq, "request line longer than 4096 bytes");
                overlong = false;
                overlong_seq.clear();
                continue;
            }
            quit = !server.on_line(line);
            wipe(line.data(), line.size());
            line.clear();
        }
        wipe(chunk.data(), chunk.size());
    }
    if (!quit) {
        if (overlong) {
            server.on_broken_line(overlong_seq, "request line longer than 4096 bytes");
        } else if (!line.empty()) {
            server.on_broken_line(std::string(leading_seq(line)),
                                  "incomplete request: input closed before its end of line");
        }
    }
    wipe(line.data(), line.size());
    server.finish();
    return out.broken() ? 1 : 0;
}

} // namespace mf::cgp
