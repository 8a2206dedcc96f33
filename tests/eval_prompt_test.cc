// Recall prompt construction without a model: a word tokenizer (BOS + one token per
// space-separated word) stands in for the model's, so depths and lengths are checked exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "eval/eval_rng.h"
#include "eval/filler.h"
#include "eval/recall_prompt.h"

namespace akv {
namespace {

std::vector<int32_t> WordTokens(const std::string& s) {
  std::vector<int32_t> t = {1};  // BOS
  bool in_word = false;
  for (char c : s) {
    const bool space = c == ' ' || c == '\n';
    if (!space && !in_word) t.push_back(static_cast<int32_t>(t.size() + 2));
    in_word = !space;
  }
  return t;
}

// Prose with varied sentence lengths and no digits, names from the templates or quotes.
std::string Prose(int sentences) {
  const char* words[] = {"the", "garden", "was", "quiet", "and", "green", "while", "birds", "sang", "over", "old", "walls", "robin"};
  std::string s;
  EvalRng rng(42);
  for (int i = 0; i < sentences; ++i) {
    const int n = 4 + static_cast<int>(rng.Below(14));
    std::string sent;
    for (int w = 0; w < n; ++w) sent += std::string(w ? " " : "") + words[rng.Below(13)];
    sent[0] = static_cast<char>(sent[0] - 'a' + 'A');
    s += sent + (i % 7 == 3 ? "!\n" : ". ");
  }
  return s;
}

int Count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

TEST(EvalFiller, SplitsSentencesAndDropsHeadings) {
  const auto s = SplitSentences("The  sky was\nblue. \xE2\x80\x9CWhere are you?\xE2\x80\x9D she asked. It cost 3.5 pounds! No. CHAPTER TWO.");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0], "The sky was blue.");
  EXPECT_EQ(s[1], "\xE2\x80\x9CWhere are you?\xE2\x80\x9D she asked.");  // the closing quote stays with its sentence
  EXPECT_EQ(s[2], "It cost 3.5 pounds!");  // "No." is too short, "CHAPTER TWO." a heading
  // A heading run into the first sentence of a chapter is mostly capitals: dropped.
  EXPECT_TRUE(SplitSentences("CHAPTER ONE THE OLD SEA DOG Squire wrote.").empty());
  EXPECT_TRUE(SplitSentences("THE END. ALL CAPS HEADING HERE.").empty());
}

TEST(EvalFiller, ContainsIsCaseInsensitive) {
  FillerCorpus c = FillerCorpus::FromText("Long John Silver was a cook on the ship. He had a parrot named Flint.");
  EXPECT_TRUE(c.Contains("john silver"));
  EXPECT_TRUE(c.Contains("PARROT NAMED"));
  EXPECT_FALSE(c.Contains("Anna Kowalski"));
  EXPECT_FALSE(FillerCorpus::Load({"/nonexistent/filler.txt"}).ok());
}

TEST(EvalPrompt, FactAtDepthWithinTolerance) {
  const FillerCorpus corpus = FillerCorpus::FromText(Prose(2000));
  for (int ctx : {512, 2048}) {
    for (double depth : {0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0}) {
      RecallPromptOptions o;
      o.n_ctx = ctx;
      o.depths = {depth};
      o.seed = 7;
      auto p = BuildRecallPrompt(corpus, WordTokens, o);
      ASSERT_TRUE(p.ok()) << p.status().ToString();
      ASSERT_EQ(p->facts.size(), 1u);
      ASSERT_EQ(p->queries.size(), 1u);
      const PlantedFact& f = p->facts[0];
      // Sentences are at most 17 words, so the nearest boundary is within ~9 tokens.
      EXPECT_NEAR(f.depth, depth, 12.0 / ctx + 1e-9) << "ctx " << ctx;
      // The context fills the window up to the reserve for the query and the answer.
      const int64_t whole = static_cast<int64_t>(WordTokens(p->context + p->queries[0].text).size());
      EXPECT_LE(whole + p->max_answer_tokens, ctx);
      EXPECT_GE(whole + p->max_answer_tokens, ctx - 40);
      EXPECT_EQ(p->context_tokens, static_cast<int64_t>(WordTokens(p->context).size()));
      // The fact's token position is where its first word is.
      const size_t at = p->context.find(f.fact.text);
      ASSERT_NE(at, std::string::npos);
      EXPECT_EQ(f.token_pos, static_cast<int64_t>(WordTokens(p->context.substr(0, at)).size()));
    }
  }
}

TEST(EvalPrompt, CueIsUniqueAndTheQueryAsksForIt) {
  const FillerCorpus corpus = FillerCorpus::FromText(Prose(1500));
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RecallPromptOptions o;
    o.n_ctx = 1024;
    o.depths = {0.3};
    o.seed = seed;
    auto p = BuildRecallPrompt(corpus, WordTokens, o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    const Fact& f = p->facts[0].fact;
    EXPECT_FALSE(corpus.Contains(f.cue));
    EXPECT_FALSE(corpus.Contains(f.name));
    EXPECT_EQ(Count(p->context, f.cue), 1) << f.cue;
    EXPECT_EQ(f.text.rfind(f.cue, 0), 0u) << "the cue is the fact up to the value";
    EXPECT_EQ(p->queries[0].text, " " + f.cue);
    ASSERT_EQ(f.value.size(), 5u);
    EXPECT_NE(f.value[0], '0');
    EXPECT_EQ(std::set<char>(f.value.begin(), f.value.end()).size(), 5u) << "digits are distinct: " << f.value;
    EXPECT_NE(f.text.find(f.value), std::string::npos);
  }
}

TEST(EvalPrompt, NamesInTheFillerAreNeverDrawn) {
  // Every surname but one occurs in the filler: every fact must use the remaining one.
  std::string text = Prose(800);
  for (const char* n : {"Novak", "Lindqvist", "Okafor", "Tanaka", "Moreau", "Petrov", "Haddad", "Fischer", "Horvath",
                        "Jansen", "Kuznetsov", "Larsen", "Mendoza", "Nakamura", "Oyelaran", "Popescu", "Quispe",
                        "Rasmussen", "Sandoval", "Takahashi", "Urbanski", "Vasquez", "Wojcik", "Yilmaz", "Zielinski"})
    text += std::string(" The man called ") + n + " came home late.";
  const FillerCorpus corpus = FillerCorpus::FromText(text);
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    RecallPromptOptions o;
    o.n_ctx = 512;
    o.seed = seed;
    auto p = BuildRecallPrompt(corpus, WordTokens, o);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_NE(p->facts[0].fact.name.find("Kowalski"), std::string::npos) << p->facts[0].fact.name;
  }
}

TEST(EvalPrompt, DeterministicPerSeedAndSameFactAtEveryDepth) {
  const FillerCorpus corpus = FillerCorpus::FromText(Prose(1500));
  RecallPromptOptions o;
  o.n_ctx = 1024;
  o.seed = 99;
  o.depths = {0.25};
  auto a = BuildRecallPrompt(corpus, WordTokens, o);
  auto b = BuildRecallPrompt(corpus, WordTokens, o);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->context, b->context);
  EXPECT_EQ(a->queries[0].text, b->queries[0].text);
  o.depths = {0.75};
  auto c = BuildRecallPrompt(corpus, WordTokens, o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->facts[0].fact.text, a->facts[0].fact.text) << "a trial plants the same fact at every depth";
  EXPECT_NE(c->context, a->context);
  o.seed = 100;
  auto d = BuildRecallPrompt(corpus, WordTokens, o);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(d->context, c->context);
  EXPECT_EQ(MixSeed(5, {1, 2, 3}), MixSeed(5, {1, 2, 3}));
  EXPECT_NE(MixSeed(5, {1, 2, 3}), MixSeed(5, {1, 2, 4}));
  EXPECT_NE(MixSeed(5, {1, 2, 3}), MixSeed(6, {1, 2, 3}));
}

TEST(EvalPrompt, MultiQueryPlantsOneFactPerDepthAndAsksEach) {
  const FillerCorpus corpus = FillerCorpus::FromText(Prose(1500));
  RecallPromptOptions o;
  o.task = "multiquery";
  o.n_ctx = 2048;
  o.depths = {0.05, 0.25, 0.5, 0.75, 0.95};
  o.seed = 3;
  auto p = BuildRecallPrompt(corpus, WordTokens, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->facts.size(), 5u);
  ASSERT_EQ(p->queries.size(), 5u);
  std::set<int> asked;
  std::set<std::string> names, values;
  for (const auto& q : p->queries) asked.insert(q.fact);
  EXPECT_EQ(asked.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_NEAR(p->facts[i].depth, o.depths[i], 0.02);
    EXPECT_EQ(Count(p->context, p->facts[i].fact.cue), 1);
    names.insert(p->facts[i].fact.name);
    values.insert(p->facts[i].fact.value);
  }
  EXPECT_EQ(names.size(), 5u);
  EXPECT_EQ(values.size(), 5u);
  // Room is left for every question and answer.
  int64_t total = p->context_tokens;
  for (const auto& q : p->queries) total += static_cast<int64_t>(WordTokens(q.text).size()) - 1 + p->max_answer_tokens;
  EXPECT_LE(total, o.n_ctx);
}

TEST(EvalPrompt, MultiFactAsksTheFactAtTheDepth) {
  const FillerCorpus corpus = FillerCorpus::FromText(Prose(1500));
  RecallPromptOptions o;
  o.task = "multifact";
  o.n_ctx = 1024;
  o.n_facts = 6;
  o.depths = {0.4};
  o.seed = 11;
  auto p = BuildRecallPrompt(corpus, WordTokens, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->facts.size(), 6u);
  ASSERT_EQ(p->queries.size(), 1u);
  EXPECT_EQ(p->queries[0].fact, 0);
  EXPECT_NEAR(p->facts[0].depth, 0.4, 0.03);
  for (const auto& f : p->facts) EXPECT_EQ(Count(p->context, f.fact.cue), 1);
}

TEST(EvalPrompt, PasskeyIsTheClassicPrompt) {
  RecallPromptOptions o;
  o.n_ctx = 1024;
  o.depths = {0.5};
  o.seed = 5;
  auto p = BuildPasskeyPrompt(WordTokens, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->context.rfind("There is an important info hidden", 0), 0u);
  EXPECT_GT(Count(p->context, "The grass is green. The sky is blue."), 20);
  EXPECT_EQ(Count(p->context, "The pass key is " + p->facts[0].fact.value + "."), 1);
  EXPECT_NEAR(p->facts[0].depth, 0.5, 0.05);
  EXPECT_EQ(p->queries[0].text, " What is the pass key? The pass key is");
}

TEST(EvalPrompt, RejectsBadOptions) {
  const FillerCorpus corpus = FillerCorpus::FromText(Prose(300));
  RecallPromptOptions o;
  o.depths = {1.5};
  EXPECT_FALSE(BuildRecallPrompt(corpus, WordTokens, o).ok());
  o.depths = {0.5, 0.6};
  EXPECT_FALSE(BuildRecallPrompt(corpus, WordTokens, o).ok()) << "recall plants one fact";
  o.depths = {0.5};
  o.n_ctx = 32;
  EXPECT_FALSE(BuildRecallPrompt(corpus, WordTokens, o).ok());
  o.n_ctx = 512;
  o.task = "nonsense";
  EXPECT_FALSE(BuildRecallPrompt(corpus, WordTokens, o).ok());
  EXPECT_FALSE(BuildRecallPrompt(FillerCorpus{}, WordTokens, RecallPromptOptions{}).ok());
  EXPECT_FALSE(SelectTemplates("quote,nope").ok());
  auto t = SelectTemplates("quote");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->size(), 1u);
}

TEST(EvalPrompt, ExtractAnswer) {
  EXPECT_EQ(ExtractAnswer(" 73915."), "73915");
  EXPECT_EQ(ExtractAnswer("\"73915\""), "73915");
  EXPECT_EQ(ExtractAnswer(" 7391"), "7391");
  EXPECT_EQ(ExtractAnswer(" the 73915"), "");
  EXPECT_EQ(ExtractAnswer(""), "");
}

}  // namespace
}  // namespace akv
