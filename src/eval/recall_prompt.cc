#include "eval/recall_prompt.h"

#include <algorithm>
#include <cmath>

#include "eval/eval_rng.h"

namespace akv {

namespace {

// Names that occur in none of the shared books; the corpus check below still rejects any that
// a user's filler contains.
const std::vector<std::string>& FirstNames() {
  static const std::vector<std::string> v = {
      "Anna", "Boris", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hiroshi", "Ingrid", "Jovan",
      "Katya", "Lorenzo", "Mirela", "Nikolai", "Oksana", "Pavel", "Quentin", "Rania", "Stellan", "Tomasz",
      "Ulrike", "Viktor", "Wanda", "Xavier", "Yusuf", "Zofia"};
  return v;
}
const std::vector<std::string>& LastNames() {
  static const std::vector<std::string> v = {
      "Kowalski", "Novak", "Lindqvist", "Okafor", "Tanaka", "Moreau", "Petrov", "Haddad", "Fischer",
      "Horvath", "Jansen", "Kuznetsov", "Larsen", "Mendoza", "Nakamura", "Oyelaran", "Popescu", "Quispe",
      "Rasmussen", "Sandoval", "Takahashi", "Urbanski", "Vasquez", "Wojcik", "Yilmaz", "Zielinski"};
  return v;
}

std::string Substitute(std::string s, const std::string& name, const std::string& value) {
  for (const auto& [key, with] : {std::pair<std::string, const std::string&>{"{name}", name}, {"{value}", value}}) {
    for (size_t at = s.find(key); at != std::string::npos; at = s.find(key, at + with.size()))
      s.replace(at, key.size(), with);
  }
  return s;
}

// A value of n digits, no leading zero, and no digit twice while n <= 10: the models copy a
// value digit by digit, keyed on the previous digit, so a repeated digit ("48398") makes the
// copy ambiguous ("483988") even when the fact was found.
std::string Digits(EvalRng& rng, int n) {
  std::string v(1, static_cast<char>('1' + rng.Below(9)));
  while (static_cast<int>(v.size()) < n) {
    const char c = static_cast<char>('0' + rng.Below(10));
    if (n <= 10 && v.find(c) != std::string::npos) continue;
    v.push_back(c);
  }
  return v;
}

// Tokens of a piece as it will appear inside a prompt: the tokenizer's count for the piece
// minus what it adds to any text (BOS).
int64_t PieceTokens(const TokenizeFn& tokenize, const std::string& s, int64_t base) {
  return static_cast<int64_t>(tokenize(s).size()) - base;
}

std::string Join(const std::vector<const std::string*>& pieces) {
  std::string out;
  for (const std::string* p : pieces) {
    if (!out.empty()) out.push_back(' ');
    out += *p;
  }
  return out;
}

// Lays pieces out so that the whole context is at most `budget` tokens and each planted piece
// starts as near its target depth as sentence boundaries allow. `filler` are interchangeable
// units in order (sentences, or the repeated pass-key lines), `est` their token estimates;
// `prefix` (may be empty) always comes first.
Status Layout(const TokenizeFn& tokenize, int64_t base, const std::string& prefix,
              const std::vector<std::string>& filler, const std::vector<int64_t>& est,
              const std::vector<std::string>& planted, const std::vector<double>& targets, int64_t budget,
              RecallPrompt* out) {
  int64_t planted_tokens = 0;
  for (const auto& p : planted) planted_tokens += PieceTokens(tokenize, p, base);
  size_t k = 0;
  int64_t sum = 0;
  while (k < filler.size() && sum + est[k] + planted_tokens <= budget) sum += est[k++];
  // Order in which the planted pieces go in (stable by target depth).
  std::vector<size_t> order(planted.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return targets[a] < targets[b]; });
  for (;;) {
    // cum[j]: estimated tokens of the filler units before boundary j.
    std::vector<int64_t> cum(k + 1, 0);
    for (size_t j = 0; j < k; ++j) cum[j + 1] = cum[j] + est[j];
    const double total = static_cast<double>(cum[k] + planted_tokens);
    std::vector<size_t> boundary(planted.size());
    for (size_t i : order) {
      // Tokens of the planted pieces that go before this one shift where a boundary lands.
      int64_t before = 0;
      for (size_t o : order) {
        if (o == i) break;
        before += PieceTokens(tokenize, planted[o], base);
      }
      size_t best = 0;
      double best_err = INFINITY;
      for (size_t j = 0; j <= k; ++j) {
        const double err = std::abs(static_cast<double>(cum[j] + before) - targets[i] * total);
        if (err < best_err) best_err = err, best = j;
      }
      boundary[i] = best;
    }
    std::vector<const std::string*> pieces;
    if (!prefix.empty()) pieces.push_back(&prefix);
    std::vector<size_t> piece_of_planted(planted.size());
    size_t next = 0;  // into order
    for (size_t j = 0; j <= k; ++j) {
      while (next < order.size() && boundary[order[next]] == j) {
        piece_of_planted[order[next]] = pieces.size();
        pieces.push_back(&planted[order[next]]);
        ++next;
      }
      if (j < k) pieces.push_back(&filler[j]);
    }
    const std::string text = Join(pieces);
    const int64_t n = static_cast<int64_t>(tokenize(text).size());
    if (n > budget && k > 0) {
      // Estimates are per unit; joining can add or merge a token, so trim one unit and retry.
      --k;
      continue;
    }
    if (n > budget) return OutOfRange("the context of " + std::to_string(budget) + " tokens cannot hold the planted facts");
    out->context = text;
    out->context_tokens = n;
    out->facts.resize(planted.size());
    for (size_t i = 0; i < planted.size(); ++i) {
      std::vector<const std::string*> before(pieces.begin(), pieces.begin() + piece_of_planted[i]);
      const std::string pre = Join(before);
      out->facts[i].target_depth = targets[i];
      out->facts[i].token_pos = pre.empty() ? base : static_cast<int64_t>(tokenize(pre).size());
      out->facts[i].depth = static_cast<double>(out->facts[i].token_pos) / static_cast<double>(n);
    }
    return Status::Ok();
  }
}

Status CheckOptions(const RecallPromptOptions& o) {
  if (o.n_ctx < 64) return InvalidArgument("recall context must be at least 64 tokens, got " + std::to_string(o.n_ctx));
  if (o.depths.empty()) return InvalidArgument("no depths given");
  for (double d : o.depths)
    if (!(d >= 0 && d <= 1)) return InvalidArgument("depth " + std::to_string(d) + " is outside [0, 1]");
  if (o.value_digits < 1 || o.value_digits > 18)
    return InvalidArgument("value digits must be 1..18, got " + std::to_string(o.value_digits));
  return Status::Ok();
}

}  // namespace

const std::vector<FactTemplate>& DefaultFactTemplates() {
  // Each cue holds a token the filler books never use (a straight double quote; they use
  // curly ones) a few tokens before the value, and ends in "number is", which the model
  // continues with digits. Full-cache accuracy on akv-tiny-llama-25m (6 trials, depths
  // 5/25/50/75/95%): at 2K "quote" 50/67/100/100/83, "card" 50/67/100/100/100, "phone" and
  // "room" 67/67/100/100/100; at 4K all four 0/17..33/33/83..100/100. Measured and left out:
  // "My secret code is" (0..3% overall), "My PIN is" (3..20%), "The code of my safe is"
  // (23% at 4K), "The locker of X opens with the code "" (2/9 at 1K), "[X's card number is"
  // (2/9 at 4K).
  static const std::vector<FactTemplate> v = {
      {"quote", "{name} said: \"My secret number is {value}.\"", "{name} said: \"My secret number is"},
      {"card", "{name} said: \"My card number is {value}.\"", "{name} said: \"My card number is"},
      {"phone", "{name} said: \"My phone number is {value}.\"", "{name} said: \"My phone number is"},
      {"room", "{name} said: \"My room number is {value}.\"", "{name} said: \"My room number is"},
  };
  return v;
}

StatusOr<std::vector<FactTemplate>> SelectTemplates(std::string_view ids) {
  const auto& all = DefaultFactTemplates();
  if (ids.empty()) return all;
  std::vector<FactTemplate> out;
  size_t start = 0;
  while (start <= ids.size()) {
    const size_t end = std::min(ids.find(',', start), ids.size());
    const std::string_view id = ids.substr(start, end - start);
    auto it = std::find_if(all.begin(), all.end(), [&](const FactTemplate& t) { return t.id == id; });
    if (it == all.end()) {
      std::string names;
      for (const auto& t : all) names += (names.empty() ? "" : ", ") + t.id;
      return InvalidArgument("unknown fact template '" + std::string(id) + "' (available: " + names + ")");
    }
    out.push_back(*it);
    start = end + 1;
  }
  return out;
}

std::string ExtractAnswer(std::string_view g) {
  size_t i = 0;
  while (i < g.size() && (g[i] == ' ' || g[i] == '"' || g[i] == '\'' || g[i] == '\n')) ++i;
  size_t j = i;
  while (j < g.size() && g[j] >= '0' && g[j] <= '9') ++j;
  return std::string(g.substr(i, j - i));
}

StatusOr<RecallPrompt> BuildRecallPrompt(const FillerCorpus& corpus, const TokenizeFn& tokenize,
                                         const RecallPromptOptions& o) {
  AKV_RETURN_IF_ERROR(CheckOptions(o));
  if (o.task != "recall" && o.task != "multifact" && o.task != "multiquery")
    return InvalidArgument("unknown recall task '" + o.task + "' (recall, multifact, multiquery)");
  if (corpus.size() == 0) return InvalidArgument("the filler corpus is empty");
  if ((o.task == "recall" || o.task == "multifact") && o.depths.size() != 1)
    return InvalidArgument(o.task + " plants the queried fact at one depth, got " + std::to_string(o.depths.size()));
  const std::vector<FactTemplate>& templates = o.templates.empty() ? DefaultFactTemplates() : o.templates;
  EvalRng rng(o.seed);

  std::vector<double> targets = o.depths;
  if (o.task == "multifact") {
    if (o.n_facts < 1) return InvalidArgument("multifact needs at least 1 fact");
    for (int i = 1; i < o.n_facts; ++i) targets.push_back(rng.Uniform());
  }
  const size_t n_facts = targets.size();
  if (n_facts > FirstNames().size() * LastNames().size() / 4)
    return InvalidArgument("too many facts (" + std::to_string(n_facts) + ") for distinct names");

  RecallPrompt p;
  p.task = o.task;
  p.max_answer_tokens = o.value_digits + 4;
  std::vector<Fact> facts;
  std::vector<std::string> used_names, used_values;
  for (size_t i = 0; i < n_facts; ++i) {
    Fact f;
    const FactTemplate& t = templates[(rng.Below(templates.size()) + i) % templates.size()];
    bool found = false;
    for (int attempt = 0; attempt < 200 && !found; ++attempt) {
      const std::string& first = rng.Pick(FirstNames());
      const std::string& last = rng.Pick(LastNames());
      f.name = first + " " + last;
      f.cue = Substitute(t.cue, f.name, "");
      // Neither half of the name may occur in the filler either: a partial match would give
      // the model a second, wrong place to copy from.
      found = std::find(used_names.begin(), used_names.end(), f.name) == used_names.end() &&
              !corpus.Contains(first) && !corpus.Contains(last) && !corpus.Contains(f.cue);
    }
    if (!found) return InvalidArgument("cannot draw a fact whose name and cue the filler does not contain (template '" + t.id + "')");
    do f.value = Digits(rng, o.value_digits);
    while (std::find(used_values.begin(), used_values.end(), f.value) != used_values.end());
    f.template_id = t.id;
    f.text = Substitute(t.fact, f.name, f.value);
    used_names.push_back(f.name);
    used_values.push_back(f.value);
    facts.push_back(std::move(f));
  }
  if (o.task == "multiquery") {
    for (size_t i = 0; i < n_facts; ++i) p.queries.push_back({static_cast<int>(i), " " + facts[i].cue});
    for (size_t i = p.queries.size(); i > 1; --i) std::swap(p.queries[i - 1], p.queries[rng.Below(i)]);
  } else {
    p.queries.push_back({0, " " + facts[0].cue});
  }

  const int64_t base = static_cast<int64_t>(tokenize("").size());
  int64_t reserve = 0;
  for (const auto& q : p.queries) reserve += PieceTokens(tokenize, q.text, base) + 1 + p.max_answer_tokens;
  const int64_t budget = o.n_ctx - reserve;
  if (budget < 32) return InvalidArgument("context of " + std::to_string(o.n_ctx) + " tokens leaves no room for filler");

  // Filler: consecutive sentences from a seeded start (wrapping around), estimated per sentence.
  std::vector<std::string> filler;
  std::vector<int64_t> est;
  int64_t sum = 0;
  const size_t start = rng.Below(corpus.size());
  for (size_t i = 0; sum < budget && i < corpus.size(); ++i) {
    filler.push_back(corpus.sentences()[(start + i) % corpus.size()]);
    est.push_back(PieceTokens(tokenize, filler.back(), base));
    sum += est.back();
  }
  if (sum < budget / 2) return InvalidArgument("the filler corpus is too small for a context of " + std::to_string(o.n_ctx) + " tokens");
  std::vector<std::string> planted;
  for (const auto& f : facts) planted.push_back(f.text);
  AKV_RETURN_IF_ERROR(Layout(tokenize, base, "", filler, est, planted, targets, budget, &p));
  for (size_t i = 0; i < n_facts; ++i) p.facts[i].fact = facts[i];
  return p;
}

StatusOr<RecallPrompt> BuildPasskeyPrompt(const TokenizeFn& tokenize, const RecallPromptOptions& o) {
  AKV_RETURN_IF_ERROR(CheckOptions(o));
  if (o.depths.size() != 1) return InvalidArgument("passkey plants one key, got " + std::to_string(o.depths.size()) + " depths");
  EvalRng rng(o.seed);
  RecallPrompt p;
  p.task = "passkey";
  p.max_answer_tokens = o.value_digits + 4;
  Fact f;
  f.template_id = "passkey";
  f.value = Digits(rng, o.value_digits);
  f.text = "The pass key is " + f.value + ". Remember it. " + f.value + " is the pass key.";
  f.cue = "What is the pass key? The pass key is";
  p.queries.push_back({0, " " + f.cue});
  const std::string intro =
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
      "I will quiz you about the important information there.";
  const std::string unit = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
  const int64_t base = static_cast<int64_t>(tokenize("").size());
  const int64_t reserve = PieceTokens(tokenize, p.queries[0].text, base) + 1 + p.max_answer_tokens;
  const int64_t budget = o.n_ctx - reserve - PieceTokens(tokenize, intro, base);
  const int64_t unit_tokens = std::max<int64_t>(1, PieceTokens(tokenize, unit, base));
  if (budget < 2 * unit_tokens) return InvalidArgument("context of " + std::to_string(o.n_ctx) + " tokens is too small for the pass-key prompt");
  std::vector<std::string> filler(static_cast<size_t>(budget / unit_tokens + 1), unit);
  std::vector<int64_t> est(filler.size(), unit_tokens);
  AKV_RETURN_IF_ERROR(Layout(tokenize, base, intro, filler, est, {f.text}, o.depths, o.n_ctx - reserve, &p));
  p.facts[0].fact = f;
  return p;
}

}  // namespace akv
