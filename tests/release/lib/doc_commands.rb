# Reads the bosh commands that docs/deploying.md and the manifests' header
# comments tell an operator to run, so that the checks run those very
# commands (with the real CLI) instead of copies of them.
require 'shellwords'

module ReleaseTest
  module DocCommands
    # One command line: its words and the flags bosh would get.
    Command = Struct.new(:words, :subcommand, :target, :ops, :vars, :var_files, :vars_files, :vars_store, :rest) do
      def to_s
        Shellwords.join(words)
      end
    end

    SHELL_OPERATORS = %w[| > >> < && ; 2>&1].freeze

    module_function

    # markdown => {section number => text}, for "## 4. Title" headings.
    def sections(markdown)
      markdown.split(/^(?=## )/).each_with_object({}) do |part, out|
        number = part[/\A## (\d+)\./, 1]
        out[number.to_i] = part if number
      end
    end

    # The ```sh blocks of a markdown text.
    def sh_blocks(text)
      text.scan(/^```sh\n(.*?)^```/m).flatten
    end

    # The ```yaml blocks of a markdown text.
    def yaml_blocks(text)
      text.scan(/^```ya?ml\n(.*?)^```/m).flatten
    end

    # Lines with backslash continuations joined.
    def logical_lines(text)
      text.gsub(/\\\n\s*/, ' ').lines.map(&:strip).reject(&:empty?)
    end

    # The leading comment of a YAML file, without the "# ".
    def header_comment(path)
      File.read(path).lines.take_while { |l| l.start_with?('#') }.map { |l| l.sub(/\A# ?/, '') }.join
    end

    # Every `bosh ...` command in TEXT (a shell block or a header comment):
    # whole lines that start with bosh, cut at the first pipe or redirection,
    # and $(bosh ...) / <(bosh ...) inside other lines.
    def bosh_commands(text)
      logical_lines(text).flat_map do |line|
        next [] if line.start_with?('#') && !line.sub(/\A#\s*/, '').start_with?('bosh ')

        line = line.sub(/\A#\s*/, '')
        found = []
        found << parse(line) if line.start_with?('bosh ')
        line.scan(/[$<]\((bosh [^)]*)\)/) { |m| found << parse(m.first) }
        found
      end
    end

    def parse(line)
      words = Shellwords.split(line)
      cut = words.index { |w| SHELL_OPERATORS.include?(w) }
      words = words[0...cut] if cut
      command = Command.new(words, nil, nil, [], {}, {}, [], nil, [])
      args = words.drop(1)
      args.shift(2) if args.first == '-e' # bosh -e ENV subcommand ...
      command.subcommand = args.shift
      until args.empty?
        word = args.shift
        case word
        when '-o', '--ops-file' then command.ops << args.shift
        when '-v', '--var'
          name, value = args.shift.split('=', 2)
          command.vars[name] = value
        when '--var-file'
          name, file = args.shift.split('=', 2)
          command.var_files[name] = file
        when '-l', '--vars-file' then command.vars_files << args.shift
        when '--vars-store' then command.vars_store = args.shift
        else
          if word.start_with?('-') || command.target
            command.rest << word
          else
            command.target = word
          end
        end
      end
      command
    end
  end
end
