// Replays a llama.cpp golden file (tests/data/runtime/golden) through llama.cpp itself: the
// prompt as one batch, then the golden tokens one at a time; prints mismatched greedy tokens per
// case and the share of golden top-3 log-probs within 1e-3. With DUMP_DIR set, writes every
// F32/F16 tensor of every step (6 x int64 header: type, ne0..ne3, contiguous; then the data) to
// compare with Pylon op by op. Built by build.sh against llama.cpp b4753. Not part of the build.
#include "llama.h"
#include "ggml.h"
#include "ggml-backend.h"
#include <nlohmann/json.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>
#include <algorithm>
static int g_eval = 0;
static const char* g_dump = nullptr;
static bool cb(struct ggml_tensor* t, bool ask, void*) {
    if (!g_dump) return false;
    if (ask) return true;
    if (t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16) return true;
    std::vector<char> buf(ggml_nbytes(t));
    ggml_backend_tensor_get(t, buf.data(), 0, buf.size());
    char path[512];
    std::string name = t->name; for (auto& ch : name) if (ch == '/' || ch == ' ') ch = '_';
    snprintf(path, sizeof path, "%s/%03d_%s_%s.bin", g_dump, g_eval, name.c_str(), ggml_op_desc(t));
    FILE* f = fopen(path, "wb");
    int64_t hdr[6] = {t->type, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ggml_is_contiguous(t)};
    fwrite(hdr, sizeof hdr, 1, f); fwrite(buf.data(), 1, buf.size(), f); fclose(f);
    return true;
}
int main(int argc, char** argv) {
    const char* model_path = argv[1]; const char* golden = argv[2];
    int only_case = argc > 3 ? atoi(argv[3]) : -1;
    g_dump = getenv("DUMP_DIR");
    llama_backend_init();
    auto mp = llama_model_default_params();
    llama_model* model = llama_model_load_from_file(model_path, mp);
    auto g = nlohmann::json::parse(std::ifstream(golden));
    int within = 0, total = 0; double mx = 0;
    for (size_t ci = 0; ci < g["cases"].size(); ++ci) {
        if (only_case >= 0 && (int)ci != only_case) continue;
        auto& c = g["cases"][ci];
        auto cp = llama_context_default_params();
        cp.n_ctx = 512; cp.n_batch = 512; cp.n_ubatch = 512; cp.n_threads = getenv("NT") ? atoi(getenv("NT")) : 2; cp.n_threads_batch = cp.n_threads; if (getenv("UB")) cp.n_ubatch = atoi(getenv("UB"));
        cp.cb_eval = cb; cp.cb_eval_user_data = nullptr;
        llama_context* ctx = llama_init_from_model(model, cp);
        auto prompt = c["prompt_token_ids"].get<std::vector<llama_token>>();
        auto want = c["generated_token_ids"].get<std::vector<int>>();
        llama_batch b = llama_batch_get_one(prompt.data(), prompt.size());
        g_eval = 0;
        llama_decode(ctx, b);
        int nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
        int bad = 0;
        for (size_t s = 0; s < want.size(); ++s) {
            float* L = llama_get_logits_ith(ctx, -1);
            double m = *std::max_element(L, L + nv), sum = 0;
            for (int i = 0; i < nv; ++i) sum += std::exp((double)L[i] - m);
            double lse = m + std::log(sum);
            int best = std::max_element(L, L + nv) - L;
            if (best != want[s]) bad++;
            for (auto& e : c["top3_logprobs_per_step"][s]) {
                double err = std::abs(L[e["id"].get<int>()] - lse - e["logprob"].get<double>());
                ++total; if (err <= 1e-3) ++within; mx = std::max(mx, err);
            }
            llama_token t = want[s];
            ++g_eval;
            if (s + 1 < want.size()) { llama_batch b1 = llama_batch_get_one(&t, 1); llama_decode(ctx, b1); }
        }
        printf("case %zu mismatched tokens %d\n", ci, bad);
        llama_free(ctx);
    }
    printf("within1e-3 %.1f%% (%d/%d) max %.2e\n", 100.0 * within / total, within, total, mx);
}
