// A main() for fuzz targets built without libFuzzer (g++, the normal test
// suite): replays every file of the given corpus directories (or files), then
// runs deterministic pseudo-random inputs and mutations of the corpus through
// the same LLVMFuzzerTestOneInput.
//
//   fuzz_replay_test [--runs=N] [--seed=S] [--max_len=L] DIR_OR_FILE...
//
// Exit status 0 when every input ran (a bug aborts the process, under ASan
// with a report). Fails if the corpus is non-empty and no seed decoded at
// all: the harness would then be testing nothing.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ipc/fuzz/decode_walk.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

using Bytes = std::vector<uint8_t>;

uint64_t Mix(uint64_t& state) {  // splitmix64
  uint64_t x = (state += 0x9E3779B97F4A7C15ull);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool ReadFile(const std::string& path, Bytes* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

// Files of `path` (a file, or a directory's regular files in name order).
std::vector<std::string> ListInputs(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "replay: cannot stat %s\n", path.c_str());
    std::exit(2);
  }
  if (!S_ISDIR(st.st_mode)) return {path};
  std::vector<std::string> files;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) {
    std::fprintf(stderr, "replay: cannot open %s\n", path.c_str());
    std::exit(2);
  }
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string p = path + "/" + e->d_name;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) files.push_back(p);
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

// Values that tend to sit on the edges of length and index checks.
constexpr uint64_t kInteresting[] = {
    0, 1, 2, 7, 8, 15, 16, 31, 32, 0x3f, 0x40, 0x7f, 0x80, 0xff, 0x100, 480, 481, 488, 512,
    4096, 8192, 16383, 16384, 16385, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000,
    0xfffffff8, 0xfffffffe, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull,
    0x8000000000000000ull, 0xfffffffffffffff8ull, 0xffffffffffffffffull};

void Mutate(Bytes* b, const std::vector<Bytes>& corpus, uint64_t& rng, size_t max_len) {
  const int rounds = 1 + static_cast<int>(Mix(rng) % 8);
  for (int r = 0; r < rounds; ++r) {
    const uint64_t pick = Mix(rng);
    const size_t n = b->size();
    switch (pick % 9) {
      case 0:  // flip a bit
        if (n) (*b)[Mix(rng) % n] ^= static_cast<uint8_t>(1u << (Mix(rng) % 8));
        break;
      case 1:  // a random byte
        if (n) (*b)[Mix(rng) % n] = static_cast<uint8_t>(Mix(rng));
        break;
      case 2:    // an interesting 1/2/4/8-byte value
      case 3: {  // (twice as likely: most checks are on integers)
        const size_t width = size_t{1} << (Mix(rng) % 4);
        if (n < width) break;
        uint64_t v = kInteresting[Mix(rng) % std::size(kInteresting)];
        if (Mix(rng) % 4 == 0) v += Mix(rng) % 5 - 2;
        std::memcpy(b->data() + Mix(rng) % (n - width + 1), &v, width);
        break;
      }
      case 4: {  // insert random bytes
        const size_t k = 1 + Mix(rng) % 16;
        const size_t at = n ? Mix(rng) % (n + 1) : 0;
        Bytes ins(k);
        for (auto& c : ins) c = static_cast<uint8_t>(Mix(rng));
        b->insert(b->begin() + static_cast<long>(at), ins.begin(), ins.end());
        break;
      }
      case 5: {  // erase a range
        if (!n) break;
        const size_t at = Mix(rng) % n;
        const size_t k = 1 + Mix(rng) % std::min<size_t>(n - at, 32);
        b->erase(b->begin() + static_cast<long>(at), b->begin() + static_cast<long>(at + k));
        break;
      }
      case 6: {  // duplicate a range
        if (!n) break;
        const size_t at = Mix(rng) % n;
        const size_t k = 1 + Mix(rng) % std::min<size_t>(n - at, 64);
        Bytes chunk(b->begin() + static_cast<long>(at), b->begin() + static_cast<long>(at + k));
        const size_t to = Mix(rng) % (n + 1);
        b->insert(b->begin() + static_cast<long>(to), chunk.begin(), chunk.end());
        break;
      }
      case 7: {  // splice: the tail of another seed
        if (corpus.empty()) break;
        const Bytes& o = corpus[Mix(rng) % corpus.size()];
        if (o.empty()) break;
        const size_t cut = n ? Mix(rng) % n : 0;
        const size_t from = Mix(rng) % o.size();
        b->resize(cut);
        b->insert(b->end(), o.begin() + static_cast<long>(from), o.end());
        break;
      }
      case 8:  // truncate
        if (n) b->resize(Mix(rng) % n);
        break;
    }
  }
  if (b->size() > max_len) b->resize(max_len);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t runs = 20000;
  uint64_t seed = 0x62756c6b68656164ull;  // "bulkhead"
  size_t max_len = 4096;
  std::vector<std::string> paths;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--runs=", 0) == 0) {
      runs = std::strtoull(a.c_str() + 7, nullptr, 10);
    } else if (a.rfind("--seed=", 0) == 0) {
      seed = std::strtoull(a.c_str() + 7, nullptr, 0);
    } else if (a.rfind("--max_len=", 0) == 0) {
      max_len = std::strtoull(a.c_str() + 10, nullptr, 10);
    } else if (a.rfind("--", 0) == 0) {
      std::fprintf(stderr, "usage: %s [--runs=N] [--seed=S] [--max_len=L] DIR_OR_FILE...\n", argv[0]);
      return 2;
    } else {
      paths.push_back(a);
    }
  }
  if (const char* env = std::getenv("BULKHEAD_FUZZ_REPLAY_RUNS")) runs = std::strtoull(env, nullptr, 10);
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);

  std::vector<Bytes> corpus;
  for (const auto& p : paths) {
    for (const auto& f : ListInputs(p)) {
      Bytes b;
      if (!ReadFile(f, &b)) {
        std::fprintf(stderr, "replay: cannot read %s\n", f.c_str());
        return 2;
      }
      std::fprintf(stderr, "replay: %s (%zu bytes)\n", f.c_str(), b.size());
      LLVMFuzzerTestOneInput(b.data(), b.size());
      corpus.push_back(std::move(b));
    }
  }
  auto& stats = bulkhead::ipc::fuzz::Stats();
  const uint64_t seed_decodes = stats.decoded_ok;

  uint64_t rng = seed;
  for (uint64_t i = 0; i < runs; ++i) {
    Bytes b;
    if (corpus.empty() || Mix(rng) % 4 == 0) {
      b.resize(Mix(rng) % std::min<size_t>(max_len + 1, 1024));
      for (auto& c : b) c = static_cast<uint8_t>(Mix(rng));
    } else {
      b = corpus[Mix(rng) % corpus.size()];
      Mutate(&b, corpus, rng, max_len);
    }
    LLVMFuzzerTestOneInput(b.data(), b.size());
  }

  std::printf(
      "replay: %zu seeds, %llu generated inputs; inputs %llu, received ok %llu, bad %llu, "
      "corrupt %llu, closed %llu; decodes %llu (ok %llu, %llu from seeds), read errors %llu; "
      "replies %llu; forged attach ok %llu, refused %llu\n",
      corpus.size(), (unsigned long long)runs, (unsigned long long)stats.inputs,
      (unsigned long long)stats.received_ok, (unsigned long long)stats.received_bad,
      (unsigned long long)stats.corrupt, (unsigned long long)stats.closed,
      (unsigned long long)stats.decode_attempts, (unsigned long long)stats.decoded_ok,
      (unsigned long long)seed_decodes, (unsigned long long)stats.read_errors,
      (unsigned long long)stats.replies_ok, (unsigned long long)stats.attach_ok,
      (unsigned long long)stats.attach_refused);
  if (!corpus.empty() && seed_decodes == 0) {
    std::fprintf(stderr, "replay: FAIL: no seed decoded; the harness reaches no decoder\n");
    return 1;
  }
  return 0;
}
