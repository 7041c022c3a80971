// Every option is documented where an operator looks: --help, configs/server.conf, README.md.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "child_process.hpp"
#include "config/config.hpp"

namespace mr {
namespace {

using namespace std::chrono_literals;

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool is_identifier_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_';
}

// `name` as a whole word: "log_file" inside "log_file_count" does not count.
bool mentions(const std::string& text, const std::string& name) {
  for (auto at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
    const bool starts = at == 0 || !is_identifier_char(text[at - 1]);
    const auto after = at + name.size();
    const bool ends = after == text.size() || !is_identifier_char(text[after]);
    if (starts && ends) return true;
  }
  return false;
}

TEST(Documentation, EchoServerHelpMentionsEveryOption) {
  test::ChildProcess child;
  const auto exit =
      test::run_to_exit(child, MR_ECHO_SERVER_PATH, {"--help"}, {}, test::Deadline(10s));
  ASSERT_FALSE(exit.timed_out);
  ASSERT_EQ(exit.code, 0) << child.stderr_text();
  for (const auto& name : option_names()) {
    EXPECT_TRUE(mentions(child.stdout_text(), "--" + name)) << "--help does not mention " << name;
  }
}

TEST(Documentation, ShippedConfigSetsEveryOption) {
  const std::string path = std::string(MR_SOURCE_DIR) + "/configs/server.conf";
  std::map<std::string, std::string> values;
  std::string error;
  ASSERT_TRUE(read_config_file(path, values, error)) << error;
  for (const auto& name : option_names()) {
    EXPECT_TRUE(values.count(name)) << "configs/server.conf does not set " << name;
  }
  // And the parser accepts every value in it.
  const std::string config_arg = "--config=" + path;
  const char* argv[] = {"echo-server", config_arg.c_str(), nullptr};
  const char* envp[] = {nullptr};
  const ConfigOutcome outcome = parse_server_options(2, argv, envp);
  EXPECT_EQ(outcome.action, ConfigOutcome::Action::kRun) << outcome.message;
}

TEST(Documentation, ReadmeMentionsEveryOption) {
  const std::string readme = read_text(std::string(MR_SOURCE_DIR) + "/README.md");
  ASSERT_FALSE(readme.empty()) << "README.md not found";
  for (const auto& name : option_names()) {
    EXPECT_TRUE(mentions(readme, name)) << "README.md does not mention the option " << name;
  }
}

}  // namespace
}  // namespace mr
