using System.Globalization;
using System.Text;
using Propolis.Standalone.Toml;

namespace Propolis.Standalone.Config;

internal sealed partial class SchemaReader
{
    // ---- [cloudinit] ----------------------------------------------------------------------

    private CloudInitConfig? ReadCloudInit(TomlTable t)
    {
        var r = new TableReader(t, "[cloudinit]", _d);
        int before = _d.Count;
        var items = new CloudInitSource?[CloudInitItems.Length];
        long sectors = 0;
        for (int i = 0; i < CloudInitItems.Length; i++)
        {
            var item = CloudInitItems[i];
            var inline = r.String(item);
            var path = ExistingFile(r, item + "-path", item + " file");
            if (r.Has(item) && r.Has(item + "-path"))
            {
                r.Error(r.KeyPosition(item + "-path"), $"'{item}' and '{item}-path' are both set; use one");
                continue;
            }
            if (inline is not null)
            {
                items[i] = new CloudInitSource.Inline(inline);
                sectors += (Encoding.UTF8.GetByteCount(inline) + 511) / 512;
            }
            else if (path is not null)
            {
                items[i] = new CloudInitSource.FromFile(path);
                sectors += (new FileInfo(path).Length + 511) / 512;
            }
        }
        if (sectors > ConfigLoader.MaxCloudInitSectors)
            r.Error(t.Position, $"cloud-init data takes {sectors} sectors of 512 bytes; the cidata volume holds at most {ConfigLoader.MaxCloudInitSectors} (256 KiB)");
        r.RejectUnknown();
        return _d.Count != before ? null : new CloudInitConfig(items[0], items[1], items[2]);
    }
}
