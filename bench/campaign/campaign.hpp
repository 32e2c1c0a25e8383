// campaign.hpp — bench/campaign's shared types: a data set, the options, one row of the
// table, and the two kinds of rows (campaign_worker.cpp, campaign_loops.cpp).
// Must never: hold a password beyond the throw-away test users it generates.
#pragma once

#include "support/dovecot_server.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace mfbench {

struct Set {
    int accounts = 0;
    int messages = 0;
};

struct Args {
    std::vector<Set> sets{{100, 50}, {1000, 10}};
    std::size_t size = 16384;
    std::vector<std::string> rows{"worker imap master",  "worker imap user",
                                  "worker maildir",      "campaign imap master",
                                  "loop mailferry-copy", "loop doveadm backup"};
    bool cheap_hash = false;
    unsigned copies = 4;
    unsigned budget = 4;
    std::string out;
};

struct Row {
    std::string name;
    double secs = 0;          // the copy: worker start (loops: first copy) to the last done
    double login_secs = 0;    // the login burst alone (worker rows)
    double campaign_secs = 0; // first login to the last account synced (worker rows)
    double cpu_secs = 0;      // CPU time of the whole machine over `secs`
    int peak_old_all = 0;     // connections to the old server, all processes
    int peak_old_worker = 0;  // ... of the worker process (worker rows)
    long checked = 0;         // accounts whose message count was checked at the new server
    long wrong = 0;           // of those, with a count other than M
    bool ok = false;
    std::string note;
};

std::string user_name(int i);
std::string password_of(int i);
std::vector<mft::TestUser> users_of(const Set& s);
// M messages per account of about `size` bytes: four in five in INBOX, the rest in Sent.
void fill(const mft::DovecotServer& srv, const Set& s, std::size_t size);
// Message counts at `srv` for up to 100 accounts spread over the set, into r.checked/wrong.
void check_counts(const mft::DovecotServer& srv, const Set& s, Row& r);

Row worker_row(const Args& a, const Set& s, const std::string& name);
Row loop_row(const Args& a, const Set& s, const std::string& name);

} // namespace mfbench
