# Checks the release layout the way `bosh create-release` would reject it
# (bosh-cli's job and package dir readers), plus the conventions of this repo.
require 'yaml'
require 'open3'

module ReleaseTest
  class ReleaseLint
    include Assertions

    SHA256 = /\Asha256:[0-9a-f]{64}\z/.freeze
    PENDING_SHA = 'sha256:pending'.freeze
    FLAGS = File::FNM_PATHNAME

    def initialize(repo, runner)
      @repo = repo
      @runner = runner
    end

    def run
      check_jobs
      check_packages
      check_blobs_yml
      check_final_yml
      check_scripts
    end

    private

    def yaml(path)
      YAML.safe_load(File.read(path), aliases: false)
    end

    def package_names
      Dir[File.join(@repo, 'packages', '*')].select { |d| File.directory?(d) }.map { |d| File.basename(d) }.sort
    end

    def package_specs
      @package_specs ||= package_names.to_h { |n| [n, yaml(File.join(@repo, 'packages', n, 'spec'))] }
    end

    def blobs
      @blobs ||= yaml(File.join(@repo, 'config', 'blobs.yml')) || {}
    end

    # The release's own sources: scripts/create-release.sh places the repository's
    # C++ tree (the paths make-cpi-source-tarball.sh packs) at src/bosh-libvirt-cpi/.
    def generated_inputs
      @generated_inputs ||= begin
        script = File.read(File.join(@repo, 'scripts', 'make-cpi-source-tarball.sh'))
        roots = script[/^candidates=\(([^)]*)\)/, 1].to_s.split
        files = Dir.chdir(@repo) { roots.flat_map { |r| File.directory?(r) ? Dir.glob("#{r}/**/*") : [r] } }
        files.select { |f| File.file?(File.join(@repo, f)) }.map { |f| "bosh-libvirt-cpi/#{f}" }
      end
    end

    def check_jobs
      Dir[File.join(@repo, 'jobs', '*')].sort.each do |dir|
        name = File.basename(dir)
        @runner.check("job #{name}: spec, templates, monit, packages") do
          problems = []
          spec_path = File.join(dir, 'spec')
          fail!('spec is missing') unless File.file?(spec_path)
          spec = yaml(spec_path)
          problems << "spec name #{spec['name'].inspect} differs from the directory name" unless spec['name'] == name
          problems << 'monit file is missing' unless File.file?(File.join(dir, 'monit'))
          templates = spec['templates'] || {}
          templates.each_key do |t|
            problems << "template #{t} is listed but templates/#{t} does not exist" unless File.file?(File.join(dir, 'templates', t))
          end
          Dir[File.join(dir, 'templates', '**', '*')].select { |f| File.file?(f) }.each do |f|
            rel = f.delete_prefix(File.join(dir, 'templates') + '/')
            problems << "templates/#{rel} is not listed in the spec" unless templates.key?(rel)
          end
          destinations = templates.values
          problems << "two templates render to the same file: #{destinations.tally.select { |_, c| c > 1 }.keys.join(', ')}" if destinations.uniq.size != destinations.size
          (spec['packages'] || []).each do |p|
            problems << "package #{p} does not exist" unless package_specs.key?(p)
          end
          (spec['properties'] || {}).each do |key, definition|
            problems << "property #{key} has no description" unless definition.is_a?(Hash) && definition['description']
          end
          assert_no_problems(problems, "job #{name}")
        end
      end
    end

    def check_packages
      package_names.each do |name|
        @runner.check("package #{name}: spec, packaging, files, dependencies") do
          dir = File.join(@repo, 'packages', name)
          spec = package_specs[name]
          problems = []
          problems << "spec name #{spec['name'].inspect} differs from the directory name" unless spec['name'] == name
          packaging = File.join(dir, 'packaging')
          if File.file?(packaging)
            text = File.read(packaging)
            _o, err, st = Open3.capture3('bash', '-n', packaging)
            problems << "packaging: bash -n failed: #{err.strip}" unless st.success?
            problems << 'packaging does not `set -e`' unless text =~ /^\s*set -[a-z]*e/
            problems << 'packaging uses BOSH_INSTALL_TARGET nowhere' unless text.include?('BOSH_INSTALL_TARGET')
            if (spec['dependencies'] || []).any? && !text.include?('${BOSH_PACKAGES_DIR:-/var/vcap/packages}')
              problems << 'packaging must find dependencies under ${BOSH_PACKAGES_DIR:-/var/vcap/packages}'
            end
            problems << 'packaging hard-codes /var/vcap/packages/' if text =~ %r{(?<!:-)/var/vcap/packages/}
          else
            problems << 'packaging is missing'
          end
          files = spec['files'] || []
          problems << 'files lists packaging' if files.any? { |g| File.fnmatch(g, 'packaging', FLAGS) }
          files.each do |glob|
            next if matches_input?(glob)

            problems << "files pattern #{glob} matches no config/blobs.yml entry and no release source"
          end
          (spec['dependencies'] || []).each do |dep|
            problems << "dependency #{dep} does not exist" unless package_specs.key?(dep)
          end
          problems << "dependency cycle through #{name}" if cycle?(name)
          assert_no_problems(problems, "package #{name}")
        end
      end
    end

    # bosh create-release deletes every file in blobs/ that config/blobs.yml does not
    # list, so a pattern counts as matched only by a blobs.yml entry or a release source.
    def matches_input?(glob)
      return true if blobs.keys.any? { |k| File.fnmatch(glob, k, FLAGS) }

      generated_inputs.any? { |g| File.fnmatch(glob, g, FLAGS) }
    end

    def cycle?(start)
      stack = (package_specs[start]['dependencies'] || []).dup
      seen = []
      until stack.empty?
        current = stack.pop
        return true if current == start
        next if seen.include?(current) || !package_specs.key?(current)

        seen << current
        stack.concat(package_specs[current]['dependencies'] || [])
      end
      false
    end

    def check_blobs_yml
      @runner.check('config/blobs.yml: entries well-formed and all used') do
        problems = []
        globs = package_specs.values.flat_map { |s| s['files'] || [] }
        blobs.each do |path, entry|
          unless entry.is_a?(Hash) && entry['size'].is_a?(Integer) && entry['sha'].is_a?(String)
            problems << "#{path}: needs an integer size and a sha"
            next
          end
          extra = entry.keys - %w[size sha object_id]
          problems << "#{path}: unexpected keys #{extra.join(', ')}" unless extra.empty?
          if entry['sha'] == PENDING_SHA
            problems << "#{path}: sha256:pending: every blob needs a real tarball (scripts/fetch-debian-sources.sh)"
          elsif entry['sha'] !~ SHA256
            problems << "#{path}: sha must be sha256:<64 hex digits>, is #{entry['sha'].inspect}"
          elsif entry['size'] <= 0
            problems << "#{path}: size must be positive"
          end
          problems << "#{path}: no package's files pattern uses it" unless globs.any? { |g| File.fnmatch(g, path, FLAGS) }
          local = File.join(@repo, 'blobs', path)
          if File.file?(local) && entry['sha'] =~ SHA256
            actual = "sha256:#{Digest::SHA256.file(local).hexdigest}"
            problems << "#{path}: blobs/#{path} has #{actual}, blobs.yml says #{entry['sha']}" unless actual == entry['sha']
          end
        end
        globs.uniq.each do |g|
          next if generated_inputs.any? { |x| File.fnmatch(g, x, FLAGS) }

          count = blobs.keys.count { |k| File.fnmatch(g, k, FLAGS) }
          problems << "#{g} matches #{count} blobs.yml entries; packaging expects exactly one" if count > 1
        end
        assert_no_problems(problems, 'config/blobs.yml')
        pending = blobs.select { |_, e| e.is_a?(Hash) && e['sha'] == PENDING_SHA }.keys
        puts "      note: pending blobs (add them with scripts/add-blobs.sh): #{pending.join(', ')}" unless pending.empty?
      end
    end

    def check_final_yml
      @runner.check('config/final.yml names the release and a blobstore') do
        final = yaml(File.join(@repo, 'config', 'final.yml'))
        assert_equal('bosh-libvirt-cpi', final['final_name'], 'final_name')
        assert(final.dig('blobstore', 'provider').is_a?(String), 'blobstore.provider is missing')
      end
    end

    def check_scripts
      @runner.check('scripts/*.sh pass bash -n and are executable') do
        problems = Dir[File.join(@repo, 'scripts', '*.sh')].sort.flat_map do |script|
          _o, err, st = Open3.capture3('bash', '-n', script)
          list = []
          list << "#{File.basename(script)}: #{err.strip}" unless st.success?
          list << "#{File.basename(script)} is not executable" unless File.executable?(script)
          list
        end
        assert_no_problems(problems, 'scripts')
      end
    end
  end
end
