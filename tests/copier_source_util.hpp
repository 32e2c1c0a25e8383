// copier_source_util.hpp — reading a copier Source in tests: one message's bytes, and a
// whole account in the shape of cu::snapshot's IMAP view, so a Source can be compared
// with what the server that wrote the tree shows over IMAP.
#pragma once

#include "copier_util.hpp"
#include "source.hpp"

#include <map>
#include <string>

namespace cu {

inline std::string read_all(mf::copy::source::Source& s, const mf::copy::source::Folder& f,
                            const mf::copy::source::Message& m) {
    std::string out;
    auto r = s.read(f, m, [&](std::string_view c) -> mf::Result<void> {
        out.append(c);
        return {};
    });
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
    return out;
}

// Every folder, subscription and message (bytes read through the Source); UIDVALIDITY per
// folder into `validity` when given.
inline Account through_source(mf::copy::source::Source& s,
                              std::map<std::string, std::uint32_t>* validity = nullptr) {
    Account a;
    auto folders = s.folders();
    REQUIRE_MESSAGE(folders, (folders ? "" : folders.error().message()));
    for (const auto& f : *folders) {
        if (f.subscribed) {
            a.subscribed.insert(f.name());
        }
        if (f.noselect) {
            a.noselect.insert(f.name());
            continue;
        }
        auto c = s.messages(f);
        REQUIRE_MESSAGE(c, (c ? "" : c.error().message()));
        CHECK_MESSAGE(c->problems.empty(), f.name());
        if (validity != nullptr) {
            (*validity)[f.name()] = c->uidvalidity;
        }
        auto& msgs = a.folders[f.name()];
        for (const auto& m : c->messages) {
            Msg msg;
            msg.uid = m.uid;
            msg.flags = m.flags;
            msg.when = m.when;
            msg.body = read_all(s, f, m);
            CHECK(msg.body.size() == m.size);
            msgs.push_back(std::move(msg));
        }
    }
    return a;
}

} // namespace cu
