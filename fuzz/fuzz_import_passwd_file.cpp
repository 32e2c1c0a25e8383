// fuzz_import_passwd_file.cpp — feeds bytes to plan_import() (include/mailferry/import.hpp) as
// a Dovecot passwd-file (user:{SCHEME}hash[:uid:gid:…]; '#' comments), the way `mailferry import
// --format dovecot-passwd-file` reads one.
//
// Input, options and what counts as a bug: see import_common.hpp (byte 0 picks domain,
// separator and stored hash; the rest is the file). Must never: open a store or write a
// file.
#include "import_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    return mf_fuzz::plan_one(mf::ImportFormat::dovecot_passwd_file, data, size);
}
