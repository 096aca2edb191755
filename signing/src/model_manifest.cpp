// Hashing a model on disk into the manifest an OMS signature lists (see model_signature.h).
//
// Enumeration follows the reference tool (sigstore/model-transparency, serialization "files"):
// every regular file under the root, named by its path relative to the root with '/' between
// components; a single-file model has one entry named "."; an ignore path excludes itself and,
// if a directory, its subtree, and is matched only from the model root. Symbolic links inside
// the model are refused (allow_symlinks: false), as are devices, FIFOs and sockets.
//
// Files are opened with O_NOFOLLOW | O_NONBLOCK and checked with fstat, so a file swapped for a
// symlink or a FIFO between the directory scan and the read is refused rather than followed or
// blocked on.
#include "pylon/common/unique_fd.h"
#include "pylon/signing/model_signature.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <set>
#include <system_error>
#include <vector>

#include "model_manifest_internal.h"

namespace pylon::signing {
namespace fs = std::filesystem;

namespace {

// The reference tool's default exclusions (OMS spec: matched at the model root only).
constexpr std::array<std::string_view, 4> kGitPaths = {".git", ".gitattributes", ".github",
                                                       ".gitignore"};
constexpr int kMaxDepth = 256;  // directory nesting below the model root


// Streams one regular file through SHA-256. `follow` is true only for a single-file model's own
// path, which the caller named (and may be a symlink).
Result<Digest> hash_regular_file(const fs::path& path, std::string_view name, bool follow) {
    const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW);
    UniqueFd fd(::open(path.c_str(), flags));
    if (fd.get() < 0) {
        if (errno == ELOOP) {
            return Error(pylon::Errc::unsupported,
                         "model contains a symbolic link: " + std::string(name));
        }
        return Error::from_errno(errno, "open " + path.string());
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return Error::from_errno(errno, "stat " + path.string());
    if (!S_ISREG(st.st_mode)) {
        return Error(pylon::Errc::unsupported,
                     "model contains a file that is not a regular file: " + std::string(name));
    }
    return sha256_fd(fd.get(), path.string());
}

class IgnoreSet {
public:
    void add(std::string rel) { paths_.insert(std::move(rel)); }
    bool matches(std::string_view rel) const {
        for (const auto& p : paths_) {
            if (rel == p || (rel.size() > p.size() && rel.starts_with(p) && rel[p.size()] == '/')) {
                return true;
            }
        }
        return false;
    }
    std::vector<std::string> sorted() const { return {paths_.begin(), paths_.end()}; }

private:
    std::set<std::string> paths_;
};

// A caller's ignore entry as a normalized path relative to the model root; nullopt for one that
// cannot name anything inside the model (outside it, "..", or the root itself).
std::optional<std::string> relative_ignore_path(const fs::path& root_abs,
                                                const std::string& entry) {
    if (entry.empty()) return std::nullopt;
    std::string rel = entry;
    const fs::path p(entry);
    if (p.is_absolute()) {
        const fs::path r = p.lexically_normal().lexically_relative(root_abs);
        if (r.empty()) return std::nullopt;
        rel = r.generic_string();
    }
    auto norm = detail::normalize_model_path(rel);
    if (!norm || norm->empty()) return std::nullopt;
    return norm;
}

// The model's name for the statement subject: the last component of its path.
std::string model_name_of(const fs::path& root_abs) {
    std::string name = root_abs.filename().string();
    if (name.empty() || !detail::is_valid_utf8(name)) return "model";
    return name;
}

Result<void> walk(const fs::path& dir, const std::string& rel_dir, const IgnoreSet& ignore,
                  int depth, std::vector<ManifestEntry>& out) {
    if (depth > kMaxDepth) {
        return Error(pylon::Errc::unsupported, "model directories nest deeper than " +
                                                   std::to_string(kMaxDepth) + " levels at " +
                                                   rel_dir);
    }
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) return Error::from_errno(ec.value(), "read directory " + dir.string());
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) break;
        const std::string name = it->path().filename().string();
        const std::string rel = rel_dir.empty() ? name : rel_dir + "/" + name;
        if (!detail::is_valid_utf8(name)) {
            return Error(pylon::Errc::unsupported,
                         "model file name is not valid UTF-8: " + dir.string() + "/" + name);
        }
        if (ignore.matches(rel)) continue;
        const fs::file_status st = it->symlink_status(ec);
        if (ec) return Error::from_errno(ec.value(), "stat " + it->path().string());
        if (fs::is_symlink(st)) {
            return Error(pylon::Errc::unsupported, "model contains a symbolic link: " + rel);
        }
        if (fs::is_directory(st)) {
            PYLON_TRY(walk(it->path(), rel, ignore, depth + 1, out));
        } else if (fs::is_regular_file(st)) {
            PYLON_TRY_ASSIGN(Digest d, hash_regular_file(it->path(), rel, false));
            out.push_back({rel, d});
        } else {
            return Error(pylon::Errc::unsupported,
                         "model contains a file that is not a regular file: " + rel);
        }
    }
    if (ec) return Error::from_errno(ec.value(), "read directory " + dir.string());
    return {};
}

}  // namespace

namespace detail {

bool model_path_less(std::string_view a, std::string_view b) noexcept {
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        if (a[i] == b[i]) continue;
        if (a[i] == '/') return true;
        if (b[i] == '/') return false;
        return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[i]);
    }
    return a.size() < b.size();
}

std::optional<std::string> normalize_model_path(std::string_view path) {
    if (path.starts_with('/')) return std::nullopt;
    std::string out;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        std::size_t end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        const std::string_view part = path.substr(pos, end - pos);
        pos = end + 1;
        if (part.empty() || part == ".") continue;
        if (part == "..") return std::nullopt;
        if (!out.empty()) out += '/';
        out += part;
    }
    return out;
}

bool is_valid_utf8(std::string_view s) noexcept {
    static constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (s.size() - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        // Overlong forms, UTF-16 surrogates and values past Unicode are not UTF-8.
        if (cp < kMinForLength[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += len;
    }
    return true;
}

Result<ModelManifest> hash_model(const fs::path& model, const ManifestOptions& options,
                                 bool allow_empty) {
    std::error_code ec;
    const fs::file_status st = fs::status(model, ec);  // the model path itself may be a symlink
    if (ec || !fs::exists(st)) {
        return Error(pylon::Errc::not_found, "model not found: " + model.string());
    }
    fs::path root_abs = fs::absolute(model, ec).lexically_normal();
    if (ec) return Error::from_errno(ec.value(), "resolve " + model.string());
    if (root_abs.filename().empty()) root_abs = root_abs.parent_path();  // "dir/" or "dir/."

    IgnoreSet ignore;
    if (options.ignore_git_paths) {
        for (auto p : kGitPaths) ignore.add(std::string(p));
    }
    for (const auto& entry : options.ignore_paths) {
        if (!is_valid_utf8(entry)) {
            return Error(pylon::Errc::invalid_argument, "ignore path is not valid UTF-8");
        }
        if (auto rel = relative_ignore_path(root_abs, entry)) ignore.add(std::move(*rel));
    }

    ModelManifest manifest;
    manifest.model_name = model_name_of(root_abs);
    manifest.ignore_paths = ignore.sorted();
    if (fs::is_regular_file(st)) {
        // Ignore paths are relative to a directory root; a single file has none below it.
        PYLON_TRY_ASSIGN(Digest d, hash_regular_file(model, model.string(), true));
        manifest.files.push_back({".", d});
    } else if (fs::is_directory(st)) {
        PYLON_TRY(walk(model, "", ignore, 0, manifest.files));
    } else {
        return Error(pylon::Errc::unsupported,
                     "model is neither a regular file nor a directory: " + model.string());
    }
    if (manifest.files.empty() && !allow_empty) {
        return Error(pylon::Errc::invalid_argument,
                     "model has no regular files to sign after exclusions: " + model.string());
    }
    std::sort(manifest.files.begin(), manifest.files.end(),
              [](const ManifestEntry& a, const ManifestEntry& b) {
                  return model_path_less(a.name, b.name);
              });
    return manifest;
}

}  // namespace detail

Digest ModelManifest::root_digest() const {
    Sha256 hasher;
    for (const auto& f : files) hasher.update(ByteView(f.digest.data(), f.digest.size()));
    return hasher.finish();
}

Result<ModelManifest> compute_manifest(const fs::path& model, const ManifestOptions& options) {
    return detail::hash_model(model, options, false);
}

}  // namespace pylon::signing
