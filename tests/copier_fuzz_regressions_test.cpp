// copier_fuzz_regressions_test.cpp — replays the inputs the copier's fuzz targets once
// failed on (tests/fixtures/fuzz-regressions/<target>/, docs/FUZZING.md) through the same
// entry points, so each stays fixed without a fuzz build.
//
// mbox_split: byte 0 picks the quoting, the rest is an mbox file; every message that
// messages() lists must read back with read(), exactly Message::size bytes, UIDs ascending
// (first finding: an empty message — a From_ line right before the next one — was listed
// but its read() always failed with "the file changed since it was indexed").
// Must never: write outside its temporary directory.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "source_mbox.hpp"
#include "support/test_env.hpp"

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace mf::copy::source;

// The inputs of one target, sorted, so a failure names the same file on every run.
std::vector<fs::path> inputs(const std::string& target) {
    std::vector<fs::path> out;
    for (const auto& e :
         fs::directory_iterator(std::string(MF_FIXTURES_DIR) + "/fuzz-regressions/" + target)) {
        out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

void replay_mbox(const std::string& input, const std::string& path) {
    const MboxQuoting quoting[] = {MboxQuoting::none, MboxQuoting::mboxrd, MboxQuoting::mboxo};
    mft::write_file(path, input.substr(1), 0600);
    auto src = open_mbox(path, quoting[static_cast<unsigned char>(input[0]) % 3]);
    auto folders = src->folders();
    REQUIRE(folders.ok());
    for (const auto& f : *folders) {
        auto contents = src->messages(f);
        if (f.noselect || !contents.ok()) {
            continue; // a file that is no mbox is refused, which is fine
        }
        std::uint32_t last = 0;
        for (const auto& m : contents->messages) {
            CHECK(m.uid > last);
            last = m.uid;
            std::uint64_t got = 0;
            auto r = src->read(f, m, [&](std::string_view chunk) -> mf::Result<void> {
                got += chunk.size();
                return {};
            });
            CHECK_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
            CHECK(got == m.size);
        }
    }
}

} // namespace

TEST_CASE("mbox_split: every message listed reads back whole") {
    mft::TempDir tmp("mf-fuzz-regress");
    auto files = inputs("mbox_split");
    REQUIRE_FALSE(files.empty());
    for (const auto& p : files) {
        CAPTURE(p.filename().string());
        std::string input = mft::read_file(p.string());
        REQUIRE_FALSE(input.empty());
        replay_mbox(input, tmp.file("inbox"));
    }
}
