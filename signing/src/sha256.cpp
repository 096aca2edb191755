// SHA-256 through OpenSSL's low-level SHA256_* functions: the same assembly (SHA-NI, AVX2) as
// EVP, without EVP's provider machinery — fetching a digest initialises OpenSSL's default
// provider, several MiB of resident pages that a small daemon (the device agent) otherwise
// never needs. The functions are deprecated in OpenSSL 3 for new applications, not removed.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "pylon/signing/sha256.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "pylon/signing/encoding.h"
#include "pylon/signing/errors.h"

namespace pylon::signing {

struct Sha256::Impl {
    SHA256_CTX ctx;
};

namespace {
void must(int ok) {
    // The SHA256_* calls cannot fail on valid arguments: crash loudly if they do.
    if (ok != 1) std::abort();
}
}  // namespace

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
    must(SHA256_Init(&impl_->ctx));
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(ByteView data) {
    must(SHA256_Update(&impl_->ctx, data.data(), data.size()));
}

Digest Sha256::finish() {
    Digest d{};
    must(SHA256_Final(d.data(), &impl_->ctx));
    must(SHA256_Init(&impl_->ctx));
    return d;
}

Digest sha256(ByteView data) {
    // Not OpenSSL's one-shot SHA256(): in OpenSSL 3 it goes through EVP_Q_digest.
    SHA256_CTX ctx;
    Digest d{};
    must(SHA256_Init(&ctx));
    must(SHA256_Update(&ctx, data.data(), data.size()));
    must(SHA256_Final(d.data(), &ctx));
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
