// queue_reseal.cpp — does a later login have to seal the password again?
//
// A seal can fail at the first login (spool disk full, directory unwritable); the copy job
// then fails with "no sealed password", and later logins are answered from the store, so
// nothing would ever seal again. The engine asks needs_seal() on every login it answers
// from the store; it must never write, and costs one stat() when the entry is there.
#include "mailferry/queue.hpp"
#include "mailferry/spool.hpp"

#include <cerrno>
#include <sys/stat.h>

namespace mf::queue {

bool needs_seal(const Config& cfg, const Account& acct) {
    if (!cfg.target.configured) {
        return false;
    }
    switch (acct.state) {
    case AccountState::provisioned:
    case AccountState::copying:
    case AccountState::failed:
        break; // the first copy is not done yet: the worker needs the password
    case AccountState::synced:
    case AccountState::resyncing:
        if (cfg.spool.keep_until != SpoolKeep::cutover) {
            return false; // first-sync: the entry is gone on purpose
        }
        break;
    case AccountState::unknown:
    case AccountState::verified:
    case AccountState::held:
    case AccountState::cutover:
    case AccountState::disabled:
        return false;
    }
    struct stat st {};
    if (::stat(spool::Spool(cfg.spool.dir).path_for(acct.name).c_str(), &st) == 0) {
        return false;
    }
    // Only a missing entry is re-sealed; a spool we cannot look into is not our call here.
    return errno == ENOENT;
}

} // namespace mf::queue
