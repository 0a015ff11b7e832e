using System.Text.Json.Serialization;

namespace Propolis.Crucible.Downstairs;

/// <summary>The JSON values of the repair API (source-generated, for NativeAOT).</summary>
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(List<string>))]
internal sealed partial class RepairJsonContext : JsonSerializerContext
{
}
