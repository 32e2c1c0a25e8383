// capi.cpp — libmailferry.so: the C ABI of include/mailferry/mailferry.h over mf::Engine.
//
// Nothing may throw or abort across this boundary: every entry point catches everything
// and turns it into a return code. Strings handed out are owned by the mf_result and
// live until mf_result_free().
#include "mailferry/mailferry.h"

#include "mailferry/engine.hpp"

#include <cstring>
#include <new>
#include <string>
#include <vector>

static_assert(MF_MAX_PASSWORD_BYTES == mf::kMaxPasswordBytes,
              "the C header's password limit is the engine's");

struct mf_handle {
    std::unique_ptr<mf::Engine> engine;
};

namespace {

// What an mf_result owns; reached through mf_result::internal_.
struct ResultStore {
    std::string user;
    std::string message;
    std::vector<std::string> strings; // names and values of extra fields
    std::vector<mf_field> fields;
};

void copy_error(char* buf, std::size_t len, const std::string& msg) {
    if (buf == nullptr || len == 0) {
        return;
    }
    std::size_t n = std::min(len - 1, msg.size());
    std::memcpy(buf, msg.data(), n);
    buf[n] = '\0';
}

mf_auth_status to_c(mf::AuthStatus s) {
    switch (s) {
    case mf::AuthStatus::ok:
        return MF_AUTH_OK;
    case mf::AuthStatus::fail:
        return MF_AUTH_FAIL;
    case mf::AuthStatus::tempfail:
        return MF_AUTH_TEMPFAIL;
    }
    return MF_AUTH_TEMPFAIL;
}

void fill(mf_result* r, const mf::AuthResult& ar) {
    auto store = std::make_unique<ResultStore>();
    store->user = ar.user;
    store->message = ar.message;
    store->strings.reserve(ar.extra.size() * 2);
    for (const auto& [k, v] : ar.extra) {
        store->strings.push_back(k);
        store->strings.push_back(v);
    }
    for (std::size_t i = 0; i + 1 < store->strings.size(); i += 2) {
        store->fields.push_back(mf_field{store->strings[i].c_str(), store->strings[i + 1].c_str()});
    }
    r->status = to_c(ar.status);
    r->user = store->user.empty() ? nullptr : store->user.c_str();
    r->message = store->message.c_str();
    r->extra = store->fields.empty() ? nullptr : store->fields.data();
    r->extra_count = store->fields.size();
    r->first_login = ar.first_login ? 1 : 0;
    r->internal_ = store.release();
}

} // namespace

extern "C" {

int mf_abi_version(void) {
    return MF_ABI_VERSION;
}

const char* mf_version(void) {
    return "0.1.0";
}

int mf_open(const char* config_path, mf_handle** out, char* errbuf, size_t errlen) {
    if (out == nullptr) {
        copy_error(errbuf, errlen, "mf_open: out is NULL");
        return MF_ERR_USAGE;
    }
    *out = nullptr;
    try {
        std::string path = mf::config_path_from(config_path != nullptr ? config_path : "");
        auto engine = mf::Engine::open(path);
        if (!engine) {
            copy_error(errbuf, errlen, engine.error().message());
            return engine.error().temporary() ? MF_ERR_TEMP : MF_ERR_CONFIG;
        }
        auto h = std::make_unique<mf_handle>();
        h->engine = std::move(*engine);
        *out = h.release();
        return MF_OK;
    } catch (const std::exception& e) {
        copy_error(errbuf, errlen, std::string("mf_open: internal error: ") + e.what());
        return MF_ERR_INTERNAL;
    } catch (...) {
        copy_error(errbuf, errlen, "mf_open: internal error");
        return MF_ERR_INTERNAL;
    }
}

void mf_close(mf_handle* h) {
    try {
        std::unique_ptr<mf_handle> owned(h);
    } catch (...) { // NOLINT(bugprone-empty-catch): a destructor failing must not escape
    }
}

void mf_result_init(mf_result* r) {
    if (r == nullptr) {
        return;
    }
    std::memset(r, 0, sizeof *r);
    r->size = sizeof *r;
    r->status = MF_AUTH_TEMPFAIL;
}

void mf_result_free(mf_result* r) {
    if (r == nullptr) {
        return;
    }
    std::unique_ptr<ResultStore> owned(static_cast<ResultStore*>(r->internal_));
    owned.reset();
    mf_result_init(r);
}

mf_auth_status mf_authenticate(mf_handle* h, const char* login, const char* password,
                               size_t password_len, const char* service, const char* client_ip,
                               mf_result* result) {
    try {
        if (result != nullptr) {
            mf_result_free(result);
        }
        mf::AuthResult ar;
        if (h == nullptr || login == nullptr || (password == nullptr && password_len > 0)) {
            ar.status = mf::AuthStatus::tempfail;
            ar.message = "mf_authenticate: NULL handle, login or password";
        } else {
            mf::AuthRequest req;
            req.login = login;
            req.password = std::string_view(password != nullptr ? password : "", password_len);
            req.service = service != nullptr ? service : "";
            req.client_ip = client_ip != nullptr ? client_ip : "";
            req.face = "capi";
            ar = h->engine->authenticate(req);
        }
        if (result != nullptr) {
            fill(result, ar);
        }
        return to_c(ar.status);
    } catch (...) {
        return MF_AUTH_TEMPFAIL;
    }
}

mf_auth_status mf_lookup_user(mf_handle* h, const char* login, mf_result* result) {
    try {
        if (result != nullptr) {
            mf_result_free(result);
        }
        mf::AuthResult ar;
        if (h == nullptr || login == nullptr) {
            ar.status = mf::AuthStatus::tempfail;
            ar.message = "mf_lookup_user: NULL handle or login";
        } else {
            ar = h->engine->lookup(login, "capi");
        }
        if (result != nullptr) {
            fill(result, ar);
        }
        return to_c(ar.status);
    } catch (...) {
        return MF_AUTH_TEMPFAIL;
    }
}

const char* mf_auth_status_name(mf_auth_status s) {
    switch (s) {
    case MF_AUTH_OK:
        return "OK";
    case MF_AUTH_FAIL:
        return "FAIL";
    case MF_AUTH_TEMPFAIL:
        return "TEMPFAIL";
    }
    return "UNKNOWN";
}

} // extern "C"
