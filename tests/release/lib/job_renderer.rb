# Renders a BOSH job's templates the way both BOSH renderers do (bosh-cli's
# create-env renderer and the director's bosh-template), restricted to what
# both share:
#   - the properties a template sees are built from the job spec's keys only:
#     the manifest's value at that dotted path, else the spec default;
#   - p(name | [names], [default]) gives the first non-nil value, else the
#     default when one was passed, else raises UnknownProperty;
#   - if_p(names...) yields the values when all are non-nil and returns an
#     object whose #else runs its block only when if_p did not yield;
#   - spec is a struct of instance facts; links are absent (as in create-env);
#   - ERB runs with trim_mode '-'.
# Why this is not the bosh CLI: every other bosh step of the release checks
# runs the real CLI (lib/bosh_cli.rb), but no CLI command renders a job's
# templates on their own. create-env renders them only inside a deploy (it
# needs the compiled release, a stemcell and a VM), and the director renders
# them inside the director; `bosh int` interpolates manifests, not ERB.
require 'erb'
require 'json'
require 'yaml'
require 'fileutils'
require 'ostruct'

module ReleaseTest
  class UnknownProperty < StandardError
    def initialize(names)
      super("Can't find property '#{Array(names).join("', or '")}'")
    end
  end

  class UnknownLink < StandardError; end

  # The object an ERB template is evaluated against.
  class TemplateContext
    # Returned by if_p: decides whether #else runs.
    class ElseBlock
      def initialize(active)
        @active = active
      end

      def else
        yield if @active
        nil
      end
    end

    attr_reader :spec, :name, :index

    def initialize(properties, spec)
      @properties = properties
      @spec = spec
      @name = spec.name
      @index = spec.index
    end

    def p(*args)
      names = Array(args[0])
      names.each do |name|
        value = ReleaseTest.dig_path(@properties, name)
        return value unless value.nil?
      end
      return args[1] if args.length > 1

      raise UnknownProperty, names
    end

    def if_p(*names)
      values = names.map { |name| ReleaseTest.dig_path(@properties, name) }
      if values.any?(&:nil?)
        ElseBlock.new(true)
      else
        yield(*values)
        ElseBlock.new(false)
      end
    end

    def if_link(_name)
      ElseBlock.new(true)
    end

    def link(name)
      raise UnknownLink, "Can't find link '#{name}'"
    end

    def binding_for_erb
      binding
    end
  end

  # Value at dotted PATH in a nested Hash, or nil.
  def self.dig_path(hash, path)
    path.to_s.split('.').reduce(hash) do |node, key|
      node.is_a?(Hash) ? node[key] : nil
    end
  end

  def self.set_path(hash, path, value)
    keys = path.split('.')
    leaf = keys.pop
    node = keys.reduce(hash) { |h, k| h[k] ||= {} }
    node[leaf] = value
  end

  def self.deep_copy(value)
    Marshal.load(Marshal.dump(value))
  end

  class JobRenderer
    attr_reader :job_dir, :spec

    def initialize(job_dir)
      @job_dir = job_dir
      @spec = YAML.safe_load(File.read(File.join(job_dir, 'spec')))
    end

    def name
      @spec['name']
    end

    def templates
      @spec['templates'] || {}
    end

    # Properties as a template sees them: spec keys only, manifest value or default.
    def effective_properties(manifest_properties)
      result = {}
      (@spec['properties'] || {}).each do |key, definition|
        value = ReleaseTest.dig_path(manifest_properties || {}, key)
        value = ReleaseTest.deep_copy(definition['default']) if value.nil? && definition.is_a?(Hash)
        ReleaseTest.set_path(result, key, value) unless value.nil?
      end
      result
    end

    def instance_spec
      OpenStruct.new(
        name: 'bosh', index: 0, id: 'a6f0f5c2-0000-4000-8000-000000000001', az: 'z1',
        bootstrap: true, deployment: 'bosh', address: '10.0.0.6', ip: '10.0.0.6',
        networks: OpenStruct.new(default: OpenStruct.new(ip: '10.0.0.6')),
        job: OpenStruct.new(name: name)
      )
    end

    def render_template(source_name, manifest_properties)
      context = TemplateContext.new(effective_properties(manifest_properties), instance_spec)
      text = File.read(File.join(@job_dir, 'templates', source_name))
      ERB.new(text, trim_mode: '-').result(context.binding_for_erb)
    end

    # Renders every template into OUT_DIR/<destination>; returns {destination => text}.
    def render_all(manifest_properties, out_dir)
      templates.each_with_object({}) do |(source, destination), rendered|
        text = render_template(source, manifest_properties)
        path = File.join(out_dir, destination)
        FileUtils.mkdir_p(File.dirname(path))
        File.write(path, text)
        File.chmod(0o755, path) if destination.start_with?('bin/')
        rendered[destination] = text
      end
    end
  end
end
