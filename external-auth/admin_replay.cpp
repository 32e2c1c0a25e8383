// admin_replay.cpp — parse, run and judge a replay file. See admin_replay.hpp.
//
// Must never: copy a password out of a Secret into anything that outlives the line
// (decoded quoted strings are wiped at once), or name a field's content in a report.
#include "admin_replay.hpp"

#include "admin_output.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace mf::cli {
namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        auto tab = line.find('\t', start);
        if (tab == std::string_view::npos) {
            out.push_back(line.substr(start));
            return out;
        }
        out.push_back(line.substr(start, tab - start));
        start = tab + 1;
    }
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.back() == ' ')) {
        s = s.front() == ' ' ? s.substr(1) : s.substr(0, s.size() - 1);
    }
    return s;
}

bool blank(std::string_view s) {
    return trim(s).empty();
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::string plural(std::size_t n, const char* word) {
    return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// A column's value: CommuniGate quoted string decoded, else as is. The decoded copy is
// wiped here; the caller gets a Secret. nullopt when the quoting is broken.
std::optional<Secret> column_value(std::string_view raw) {
    if (raw.empty() || raw.front() != '"') {
        return Secret(raw);
    }
    auto d = decode_cgp_string(raw);
    if (!d) {
        return std::nullopt;
    }
    Secret s(*d);
    wipe(d->data(), d->size());
    return s;
}

struct Columns {
    std::size_t count = 0;
    std::size_t name = 0;
    std::size_t password = 0;
    std::optional<std::size_t> new_name;
    std::optional<std::size_t> new_password;
};

// The MoveAccounts header, or why it is not one.
Result<Columns> parse_header(std::string_view line, std::size_t n) {
    Columns c;
    auto cols = split_tabs(line);
    c.count = cols.size();
    std::optional<std::size_t> name;
    std::optional<std::size_t> pw;
    for (std::size_t i = 0; i < cols.size(); ++i) {
        std::string_view h = trim(cols[i]);
        if (h.size() >= 2 && h.front() == '"' && h.back() == '"') {
            h = h.substr(1, h.size() - 2);
        }
        std::optional<std::size_t>* slot = nullptr;
        const char* label = "";
        if (iequals(h, "Name")) {
            slot = &name, label = "Name";
        } else if (iequals(h, "Password")) {
            slot = &pw, label = "Password";
        } else if (iequals(h, "NewName")) {
            slot = &c.new_name, label = "NewName";
        } else if (iequals(h, "NewPassword")) {
            slot = &c.new_password, label = "NewPassword";
        }
        if (slot == nullptr) {
            continue; // other columns are CommuniGate's business
        }
        if (slot->has_value()) {
            return make_error("line " + std::to_string(n),
                              std::string("the header names the column ") + label + " twice",
                              Scope::config);
        }
        *slot = i;
    }
    if (!name || !pw) {
        // Never show the line: without a header it would hold a user's password.
        return make_error("line " + std::to_string(n),
                          "a MoveAccounts file starts with a header naming the columns Name and "
                          "Password (TAB-separated); found " +
                              plural(cols.size(), "column") + ", none called " +
                              (!name ? "Name" : "Password"),
                          Scope::config);
    }
    c.name = *name;
    c.password = *pw;
    return c;
}

bool looks_like_header(std::string_view line) {
    bool name = false;
    bool pw = false;
    for (std::string_view h : split_tabs(line)) {
        h = trim(h);
        if (h.size() >= 2 && h.front() == '"' && h.back() == '"') {
            h = h.substr(1, h.size() - 2);
        }
        name = name || iequals(h, "Name");
        pw = pw || iequals(h, "Password");
    }
    return name && pw;
}

// Does MoveAccounts' NewName name the account the identity map gives `id`?
bool same_account(std::string_view new_name, const Identity& id, const IdentityMap& ids) {
    const std::string n = lower(new_name);
    if (n == lower(id.canonical) || n == lower(id.local)) {
        return true;
    }
    auto other = ids.resolve(new_name);
    return other && other->canonical == id.canonical;
}

class Planner {
  public:
    Planner(ReplayPlan& plan, const IdentityMap& ids) : plan_(plan), ids_(ids) {}

    void problem(std::size_t n, LineResult r, std::string detail, std::string user = {},
                 const Identity* id = nullptr) {
        LineReport rep;
        rep.line = n;
        rep.user = std::move(user);
        if (id != nullptr) {
            rep.account = id->canonical;
            rep.server = id->provider->name;
        }
        rep.result = r;
        rep.detail = std::move(detail);
        plan_.reports.push_back(std::move(rep));
    }

    // A line read into name and password; the rest is checked here.
    void add(std::size_t n, std::string_view login, Secret password) {
        const std::string shown = printable(login, 80);
        if (login.empty()) {
            problem(n, LineResult::malformed, "empty user name");
            return;
        }
        if (auto bad = utf8_problem(login); !bad.empty()) {
            problem(n, LineResult::malformed, "user name: " + bad);
            return;
        }
        if (password.empty()) {
            problem(n, LineResult::malformed, "empty password", shown);
            return;
        }
        if (password.size() > kMaxPasswordBytes) { // the engine would refuse it
            problem(n, LineResult::malformed,
                    "password longer than " + std::to_string(kMaxPasswordBytes) + " bytes", shown);
            return;
        }
        auto id = ids_.resolve(login);
        if (!id) {
            problem(n, LineResult::refused,
                    "the identity map refuses the name: " + id.error().message(), shown);
            return;
        }
        if (auto it = seen_.find(id->canonical); it != seen_.end()) {
            const ReplayLine& first = plan_.lines[it->second];
            if (first.password.view() == password.view()) {
                problem(n, LineResult::skipped,
                        "same account and password as line " + std::to_string(first.line), shown,
                        &*id);
            } else {
                problem(n, LineResult::duplicate,
                        "account also on line " + std::to_string(first.line) +
                            " with another password; only line " + std::to_string(first.line) +
                            " is replayed",
                        shown, &*id);
            }
            return;
        }
        seen_.emplace(id->canonical, plan_.lines.size());
        plan_.lines.push_back(
            ReplayLine{n, std::string(login), std::move(*id), std::move(password)});
    }

    const IdentityMap& ids() const { return ids_; }

  private:
    ReplayPlan& plan_;
    const IdentityMap& ids_;
    std::map<std::string, std::size_t> seen_; // canonical → index in plan_.lines
};

// Common to both formats: the last line without a line end may have been cut off.
bool cut_off(const TextFile& file, std::size_t i, Planner& p) {
    if (i + 1 == file.lines().size() && file.unterminated_last_line()) {
        p.problem(i + 1, LineResult::malformed,
                  "no line end: the file may have been cut off here (end the line with a "
                  "newline if it is complete)");
        return true;
    }
    return false;
}

void plan_tab(const TextFile& file, Planner& p, ReplayPlan& plan) {
    const auto& lines = file.lines();
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::size_t n = i + 1;
        std::string_view line = lines[i];
        if (blank(line) || line.front() == '#') {
            continue;
        }
        ++plan.data_lines;
        if (auto bad = line_problem(line); !bad.empty()) {
            p.problem(n, LineResult::malformed, bad);
            continue;
        }
        if (cut_off(file, i, p)) {
            continue;
        }
        auto cols = split_tabs(line);
        if (cols.size() != 2) {
            p.problem(n, LineResult::malformed,
                      plural(cols.size(), "field") + ", expected 2: user<TAB>password");
            continue;
        }
        p.add(n, cols[0], Secret(cols[1]));
    }
}

void plan_moveaccounts(const TextFile& file, Planner& p, ReplayPlan& plan,
                       std::size_t header_index) {
    const auto& lines = file.lines();
    auto header = parse_header(lines[header_index], header_index + 1);
    if (!header) {
        p.problem(header_index + 1, LineResult::malformed, header.error().detail);
        return;
    }
    const Columns& c = *header;
    for (std::size_t i = header_index + 1; i < lines.size(); ++i) {
        const std::size_t n = i + 1;
        std::string_view line = lines[i];
        if (blank(line)) {
            continue;
        }
        ++plan.data_lines;
        if (auto bad = line_problem(line); !bad.empty()) {
            p.problem(n, LineResult::malformed, bad);
            continue;
        }
        if (cut_off(file, i, p)) {
            continue;
        }
        auto cols = split_tabs(line);
        if (cols.size() != c.count) {
            p.problem(n, LineResult::malformed,
                      plural(cols.size(), "column") + ", the header has " +
                          std::to_string(c.count));
            continue;
        }
        auto name = column_value(cols[c.name]);
        if (!name) {
            p.problem(n, LineResult::malformed, "Name column: broken quoted string");
            continue;
        }
        auto pw = column_value(cols[c.password]);
        if (!pw) {
            p.problem(n, LineResult::malformed, "Password column: broken quoted string");
            continue;
        }
        std::string login(name->view());
        if (c.new_password) {
            auto np = column_value(cols[*c.new_password]);
            if (!np) {
                p.problem(n, LineResult::malformed, "NewPassword column: broken quoted string");
                continue;
            }
            if (!np->empty()) {
                p.problem(n, LineResult::unsupported,
                          "NewPassword is set: replay moves the verified old password and never "
                          "sets another (change it on the new server after the migration)",
                          printable(login, 80));
                continue;
            }
        }
        if (c.new_name) {
            auto nn = column_value(cols[*c.new_name]);
            if (!nn) {
                p.problem(n, LineResult::malformed, "NewName column: broken quoted string");
                continue;
            }
            if (!nn->empty()) {
                auto id = p.ids().resolve(login);
                if (id && !same_account(nn->view(), *id, p.ids())) {
                    p.problem(n, LineResult::unsupported,
                              "NewName " + printable(nn->view(), 80) +
                                  " is not the account the identity map gives (" + id->canonical +
                                  "): add \"" + printable(login, 80) + " " +
                                  printable(nn->view(), 80) +
                                  "\" to identity.conflict_map and replay again",
                              printable(login, 80), &*id);
                    continue;
                }
            }
        }
        p.add(n, login, std::move(*pw));
    }
}

// At most `max_concurrent` of our own threads per old server at the engine at once: the
// engine's slot files are the real bound (shared with every login helper), this only keeps
// our other threads from polling them. Without it, idle threads would spin on "busy"
// answers and, backing off, leave slots unused between polls.
class Gate {
  public:
    explicit Gate(unsigned n) : free_(std::max(1u, n)) {}
    void acquire() {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return free_ > 0; });
        --free_;
    }
    void release() {
        {
            std::lock_guard lk(mu_);
            ++free_;
        }
        cv_.notify_one();
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    unsigned free_;
};

} // namespace

const char* to_string(ReplayFormat f) {
    switch (f) {
    case ReplayFormat::automatic:
        return "auto";
    case ReplayFormat::moveaccounts:
        return "moveaccounts";
    case ReplayFormat::tab:
        return "tab";
    }
    return "?";
}

std::optional<ReplayFormat> replay_format_from(std::string_view name) {
    for (auto f : {ReplayFormat::automatic, ReplayFormat::moveaccounts, ReplayFormat::tab}) {
        if (name == to_string(f)) {
            return f;
        }
    }
    return std::nullopt;
}

const char* to_string(LineResult r) {
    switch (r) {
    case LineResult::ok:
        return "ok";
    case LineResult::skipped:
        return "skipped";
    case LineResult::wrong_password:
        return "wrong password";
    case LineResult::temporary:
        return "temporary, retry later";
    case LineResult::malformed:
        return "malformed";
    case LineResult::duplicate:
        return "duplicate";
    case LineResult::unsupported:
        return "unsupported";
    case LineResult::refused:
        return "refused";
    case LineResult::would_replay:
        return "would replay";
    }
    return "?";
}

bool is_definite_no(LineResult r) {
    switch (r) {
    case LineResult::wrong_password:
    case LineResult::malformed:
    case LineResult::duplicate:
    case LineResult::unsupported:
    case LineResult::refused:
        return true;
    case LineResult::ok:
    case LineResult::skipped:
    case LineResult::temporary:
    case LineResult::would_replay:
        return false;
    }
    return true;
}

Result<ReplayPlan> plan_replay(const TextFile& file, ReplayFormat format, const IdentityMap& ids) {
    ReplayPlan plan;
    const auto& lines = file.lines();
    std::size_t first = 0;
    while (first < lines.size() && (blank(lines[first]) || (format != ReplayFormat::moveaccounts &&
                                                            lines[first].front() == '#'))) {
        ++first;
    }
    if (first == lines.size()) {
        return make_error(file.name(), "no account lines: the file is empty", Scope::config);
    }
    if (format == ReplayFormat::automatic) {
        format = looks_like_header(lines[first]) ? ReplayFormat::moveaccounts : ReplayFormat::tab;
    }
    plan.format = format;
    Planner p(plan, ids);
    if (format == ReplayFormat::moveaccounts) {
        auto header = parse_header(lines[first], first + 1);
        if (!header) {
            return make_error(file.name() + ":" + std::to_string(first + 1), header.error().detail,
                              Scope::config);
        }
        if (header->new_password) {
            plan.warnings.push_back("lines with a NewPassword are not replayed (reported as "
                                    "unsupported): replay keeps the old password");
        }
        plan_moveaccounts(file, p, plan, first);
        if (plan.data_lines == 0) {
            return make_error(file.name(), "no account lines after the header", Scope::config);
        }
    } else {
        plan_tab(file, p, plan);
    }
    if (file.had_bom()) {
        plan.warnings.push_back("a UTF-8 byte order mark at the start was ignored");
    }
    if (file.crlf_lines() > 0) {
        plan.warnings.push_back(plural(file.crlf_lines(), "line") +
                                " ended in CRLF; the CRs were ignored");
    }
    return plan;
}

std::vector<LineReport> run_replay(Engine& engine, ReplayPlan& plan, const ReplayOptions& opt,
                                   const std::function<void()>& tick) {
    std::vector<LineReport> out(plan.lines.size());
    std::atomic<std::size_t> next{0};
    std::map<std::string, std::unique_ptr<Gate>> gates; // by provider; read-only once threads run
    for (const auto& l : plan.lines) {
        const ProviderConfig& p = *l.identity.provider;
        if (!gates.contains(p.name)) {
            gates.emplace(p.name, std::make_unique<Gate>(p.max_concurrent));
        }
    }
    auto work = [&](unsigned seed) {
        std::minstd_rand rng(seed);
        for (std::size_t i = next++; i < plan.lines.size(); i = next++) {
            ReplayLine& l = plan.lines[i];
            LineReport& rep = out[i];
            rep.line = l.line;
            rep.user = printable(l.login, 80);
            rep.account = l.identity.canonical;
            rep.server = l.identity.provider->name;
            // Resumable: an account already migrated is done, whatever this file says.
            auto acct = find_login_account(engine.store(), l.identity.canonical,
                                           l.identity.provider->case_insensitive, nullptr);
            if (acct && acct->has_value() && is_migrated((**acct).state)) {
                rep.result = LineResult::skipped;
                rep.detail = std::string("already migrated (") + to_string((**acct).state) + ")";
                l.password.clear();
                tick();
                continue;
            }
            const auto deadline = std::chrono::steady_clock::now() + opt.busy_wait;
            std::chrono::milliseconds pause{5};
            unsigned waits = 0;
            AuthResult r;
            Gate& gate = *gates.at(rep.server);
            gate.acquire();
            for (;;) {
                r = engine.authenticate(
                    AuthRequest{l.login, l.password.view(), "replay", opt.client_ip, "replay"});
                if (!r.server_busy || std::chrono::steady_clock::now() + pause > deadline) {
                    break;
                }
                // The old server's budget is full: its limit, not ours, sets the pace.
                ++waits;
                std::uniform_int_distribution<long> jitter(0, pause.count());
                std::this_thread::sleep_for(pause + std::chrono::milliseconds(jitter(rng)));
                // Short: a verification takes tens of ms; a slot left idle is rate lost.
                pause = std::min(pause * 2, std::chrono::milliseconds(50));
            }
            gate.release();
            l.password.clear();
            switch (r.status) {
            case AuthStatus::ok:
                rep.result = LineResult::ok;
                break;
            case AuthStatus::fail:
                rep.result = LineResult::wrong_password;
                break;
            case AuthStatus::tempfail:
                rep.result = LineResult::temporary;
                break;
            }
            rep.detail = r.message;
            if (r.server_busy) {
                rep.detail += " (still busy after waiting " + format_duration(opt.busy_wait) + ")";
            } else if (waits > 0) {
                rep.detail += " (waited " + std::to_string(waits) + "x for a free server slot)";
            }
            tick();
        }
    };
    const unsigned jobs = std::max(1u, opt.jobs);
    {
        std::vector<std::jthread> threads;
        threads.reserve(jobs);
        for (unsigned t = 0; t < jobs; ++t) {
            threads.emplace_back(work, 0x5eed + t);
        }
    }
    return out;
}

std::vector<LineReport> dry_run_replay(const ReplayPlan& plan, Store* store) {
    std::vector<LineReport> out;
    out.reserve(plan.lines.size());
    for (const ReplayLine& l : plan.lines) {
        LineReport rep;
        rep.line = l.line;
        rep.user = printable(l.login, 80);
        rep.account = l.identity.canonical;
        rep.server = l.identity.provider->name;
        rep.result = LineResult::would_replay;
        rep.detail =
            "verify at " + l.identity.provider->host + " as " + printable(l.identity.old_login, 80);
        if (store != nullptr) {
            auto acct = find_login_account(*store, l.identity.canonical,
                                           l.identity.provider->case_insensitive, nullptr);
            if (!acct) {
                rep.detail += " (store: " + acct.error().message() + ")";
            } else if (acct->has_value() && is_migrated((**acct).state)) {
                rep.result = LineResult::skipped;
                rep.detail = std::string("already migrated (") + to_string((**acct).state) + ")";
            }
        }
        out.push_back(std::move(rep));
    }
    return out;
}

std::vector<LineReport> all_reports(const ReplayPlan& plan, std::vector<LineReport> done) {
    done.insert(done.end(), plan.reports.begin(), plan.reports.end());
    std::stable_sort(done.begin(), done.end(),
                     [](const LineReport& a, const LineReport& b) { return a.line < b.line; });
    return done;
}

int replay_exit_code(const std::vector<LineReport>& reports) {
    bool no = false;
    for (const auto& r : reports) {
        if (r.result == LineResult::temporary) {
            return kExitTempFail;
        }
        no = no || is_definite_no(r.result);
    }
    return no ? kExitNo : kExitOk;
}

} // namespace mf::cli
