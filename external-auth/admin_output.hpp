// admin_output.hpp — what the admin commands share to talk to a person or a script:
// tables, a progress bar, times, and the config/identity/store they all open.
//
// Text goes to stdout (a table a person reads; the same without colours when piped),
// progress and warnings to stderr, and with --json one document on stdout instead.
// The progress bar draws only when stderr is a terminal, at most ten times a second.
// Must never: print a password, or a field of an input line that may hold one.
// Errors: loading the config, the identity map or the store come back as mf::Error values
// with the file named; the command maps them to its exit code.
#pragma once

#include "cli_command.hpp"
#include "mailferry/config.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/store.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace mf::cli {

bool stdout_is_tty();
bool stderr_is_tty();

// Columns padded to the widest cell (counted in UTF-8 code points); the header underlined
// by a blank line's worth of nothing — admins grep these, so no box drawing.
class Table {
  public:
    explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    [[nodiscard]] bool empty() const { return rows_.empty(); }
    void print(std::ostream& out) const;

  private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

// "label [#########.........]  412/1000  41%  12.3/s  eta 48s" on stderr, redrawn in
// place. tick() may be called from many threads.
class Progress {
  public:
    Progress(std::string label, std::size_t total, bool enabled);
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    void tick(std::size_t n = 1);
    void finish(); // final line, then a newline; called by the destructor if not before

  private:
    void draw(bool final);

    std::string label_;
    std::size_t total_;
    bool enabled_;
    std::atomic<std::size_t> done_{0};
    std::mutex mu_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
    bool finished_ = false;
};

// Local time "2024-11-23 10:00:01"; "never" for 0.
std::string local_time(UnixTime t);
// ISO 8601 UTC "2024-11-23T09:00:01Z"; "" for 0.
std::string iso_utc(UnixTime t);
// "3d 4h ago", "12m ago", "just now".
std::string ago(UnixTime then, UnixTime now);
// Printable for a terminal: control bytes become '?', capped at `max` bytes.
std::string printable(std::string_view s, std::size_t max = 200);

// The config and identity map every command opens (the identity map points into the
// config, so both live here together, never moved).
struct Loaded {
    Config cfg;
    std::optional<IdentityMap> ids;
};
Result<std::unique_ptr<Loaded>> load_config_and_identity(const std::string& config_path);

// The store for reading only. nullopt (no error) when the database does not exist yet.
Result<std::unique_ptr<Store>> open_store_readonly(const Config& cfg, bool* missing);

// A warning on stderr ("warning: …"); with --json the command collects them instead.
void warn(const std::string& text);

} // namespace mf::cli
