#include "pylon/signing/sha256.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"

namespace pylon::signing {

struct Sha256::Impl {
    EVP_MD_CTX* ctx = nullptr;
    ~Impl() { EVP_MD_CTX_free(ctx); }
};

namespace {
void must(int ok) {
    // EVP digest calls fail only on allocation failure or a broken OpenSSL: crash loudly.
    if (ok != 1) std::abort();
}
const EVP_MD* sha256_md() {
    // Fetch once: EVP_sha256() goes through the provider lookup on every init otherwise.
    static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (!md) std::abort();
    return md;
}
}  // namespace

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
    impl_->ctx = EVP_MD_CTX_new();
    if (!impl_->ctx) std::abort();
    must(EVP_DigestInit_ex2(impl_->ctx, sha256_md(), nullptr));
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(ByteView data) {
    must(EVP_DigestUpdate(impl_->ctx, data.data(), data.size()));
}

Digest Sha256::finish() {
    Digest d{};
    unsigned int len = 0;
    must(EVP_DigestFinal_ex(impl_->ctx, d.data(), &len));
    must(EVP_DigestInit_ex2(impl_->ctx, sha256_md(), nullptr));
    return d;
}

Digest sha256(ByteView data) {
    Digest d{};
    unsigned int len = 0;
    must(EVP_Digest(data.data(), data.size(), d.data(), &len, sha256_md(), nullptr));
    return d;
}

Result<Digest> sha256_fd(int fd, std::string_view what) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    std::vector<std::uint8_t> buf(1 << 20);
    Sha256 h;
    while (true) {
        const ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return pylon::Error::from_errno(errno, "read " + std::string(what));
        }
        if (n == 0) break;
        h.update(ByteView(buf.data(), static_cast<std::size_t>(n)));
    }
    return h.finish();
}

Result<Digest> sha256_file(const std::filesystem::path& path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return pylon::Error::from_errno(errno, "open " + path.string());
    struct stat st {};
    Result<Digest> out =
        pylon::Error(pylon::Errc::unsupported, "not a regular file: " + path.string());
    if (::fstat(fd, &st) != 0) {
        out = pylon::Error::from_errno(errno, "stat " + path.string());
    } else if (S_ISREG(st.st_mode)) {
        out = sha256_fd(fd, path.string());
    }
    ::close(fd);
    return out;
}

std::string to_hex(const Digest& d) {
    return hex_encode(d);
}

Result<Digest> digest_from_hex(std::string_view hex) {
    if (hex.size() != 64) {
        return Error(Errc::bad_encoding,
                     "a SHA-256 digest is 64 hex characters, got " + std::to_string(hex.size()));
    }
    PYLON_TRY_ASSIGN(Bytes raw, hex_decode(hex));
    Digest d{};
    std::copy(raw.begin(), raw.end(), d.begin());
    return d;
}

}  // namespace pylon::signing
