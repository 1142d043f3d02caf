# The real bosh CLI (v7.1.2) for the release checks. Everything bosh does
# (ops files, ((variables)), the vars store, --var-errs) is left to it; this
# file only finds it, runs it and reads the variable lists of its errors.
#
# Where it is: $BOSH_TOOLS/bosh when BOSH_TOOLS is set, else
# <repo>/../shared/tools/bosh. A missing CLI fails every check that needs it
# with the message of BoshCli.path; nothing is skipped.
require 'open3'
require 'yaml'
require_relative 'harness'

module ReleaseTest
  module BoshCli
    # One `bosh int` run. missing: the variables of "Expected to find
    # variables" (--var-errs); unused: those of "Expected to use variables"
    # (--var-errs-unused).
    Result = Struct.new(:argv, :out, :err, :status) do
      def success?
        status.success?
      end

      def missing
        BoshCli.listed(err, 'Expected to find variables')
      end

      def unused
        BoshCli.listed(err, 'Expected to use variables')
      end

      def describe
        "`#{BoshCli.show(argv)}` exited #{status.exitstatus}:\n#{err.strip.empty? ? out.strip : err.strip}"
      end
    end

    module_function

    def candidates
      tools = ENV['BOSH_TOOLS'].to_s
      return [File.join(File.expand_path(tools), 'bosh')] unless tools.empty?

      [File.expand_path('../../../../shared/tools/bosh', __dir__)]
    end

    # The CLI's path; raises Failure when it is not there.
    def path
      found = candidates.find { |c| File.file?(c) && File.executable?(c) }
      return found if found

      raise Failure, "the bosh CLI is missing: no executable #{candidates.join(' or ')}. " \
                     'These checks run the real bosh CLI (v7.1.2); set BOSH_TOOLS to the directory that holds `bosh`.'
    end

    def version
      out, err, status = Open3.capture3(path, '--version')
      raise Failure, "#{path} --version exited #{status.exitstatus}: #{err.strip}" unless status.success?

      out.strip
    end

    # Runs `bosh ARGS...` (the CLI's path is prepended).
    def run(args, chdir: nil)
      argv = [path, *args]
      opts = chdir ? { chdir: chdir } : {}
      out, err, status = Open3.capture3(*argv, **opts)
      Result.new(argv, out, err, status)
    end

    # `bosh int TEMPLATE` with the given flags. VARS: name => value (-v);
    # VAR_FILES: name => path (--var-file); VARS_FILES: paths (-l).
    def int(template, ops: [], vars: {}, var_files: {}, vars_files: [], vars_store: nil, path: nil,
            var_errs: false, var_errs_unused: false, chdir: nil)
      args = ['int', template]
      ops.each { |o| args.push('-o', o) }
      vars_files.each { |f| args.push('-l', f) }
      vars.each { |name, value| args.push('-v', "#{name}=#{value}") }
      var_files.each { |name, file| args.push('--var-file', "#{name}=#{file}") }
      args.push('--vars-store', vars_store) if vars_store
      args.push('--path', path) if path
      args << '--var-errs' if var_errs
      args << '--var-errs-unused' if var_errs_unused
      run(args, chdir: chdir)
    end

    # Like int, but raises Failure unless bosh succeeds; returns the parsed YAML.
    def int!(template, **opts)
      result = int(template, **opts)
      raise Failure, result.describe unless result.success?

      YAML.safe_load(result.out, aliases: false)
    end

    # The variable names bosh lists under HEADING in an error message:
    #   - Expected to find variables:
    #       - director_name
    def listed(text, heading)
      block = text[/#{Regexp.escape(heading)}:\n((?:[ \t]+- .*(?:\n|\z))*)/, 1]
      block ? block.scan(/^[ \t]+- (\S+)/).flatten : []
    end

    def show(argv)
      ['bosh', *argv.drop(1)].map { |a| a =~ %r{\A[\w./=:,@+-]+\z} ? a : a.inspect }.join(' ')
    end
  end
end
