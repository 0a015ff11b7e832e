using System.Net.Sockets;
using System.Text;
using Propolis.Core.Chardev;
using Propolis.Core.Hw.Uart;
using Propolis.Core.Tests.Hw.Uart;
using static Propolis.Core.Tests.Hw.Uart.Reg;

namespace Propolis.Core.Tests.Chardev;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ConsoleSocketTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("propolis-console-");

    private string SocketPath => System.IO.Path.Combine(_dir.FullName, "ttya");

    public void Dispose() => _dir.Delete(recursive: true);

    private static (Uart16550 Uart, Guest Guest) CreateUart()
    {
        var uart = new Uart16550(new RecordingIrqLine());
        return (uart, new Guest(uart));
    }

    private static Socket Connect(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        {
            ReceiveTimeout = 30_000, // a hung test fails instead of hanging the run
            SendTimeout = 30_000,
        };
        socket.Connect(new UnixDomainSocketEndPoint(path));
        return socket;
    }

    private static byte[] ReadExactly(Socket socket, int count)
    {
        var buffer = new byte[count];
        int read = 0;
        while (read < count)
        {
            int n = socket.Receive(buffer, read, count - read, SocketFlags.None);
            if (n == 0)
                throw new EndOfStreamException($"EOF after {read} of {count} bytes");
            read += n;
        }
        return buffer;
    }

    private static byte[] ReadToEnd(Socket socket)
    {
        var all = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
            all.Write(buffer, 0, n);
        return all.ToArray();
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"gave up waiting for: {what}");
            Thread.Sleep(1);
        }
    }

    private static void GuestWrite(Guest guest, string text)
    {
        foreach (byte b in Encoding.ASCII.GetBytes(text))
            guest.Out(TX, b);
    }

    [Fact]
    public void Socket_file_is_created_with_mode_0600()
    {
        var (uart, _) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(SocketPath));
    }

    [Fact]
    public void A_stale_socket_file_is_replaced()
    {
        // A socket file whose process is gone. (.NET unlinks what it bound on Dispose, so bind
        // elsewhere and move the file into place, as a crashed process would leave it.)
        string elsewhere = SocketPath + ".old";
        using (var dead = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            dead.Bind(new UnixDomainSocketEndPoint(elsewhere));
            File.Move(elsewhere, SocketPath);
        }
        Assert.True(File.Exists(SocketPath));

        var (uart, guest) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        GuestWrite(guest, "ok");
        using var client = Connect(SocketPath);
        Assert.Equal("ok"u8.ToArray(), ReadExactly(client, 2));
    }

    [Fact]
    public void A_socket_served_by_someone_else_is_refused()
    {
        using var live = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        live.Bind(new UnixDomainSocketEndPoint(SocketPath));
        live.Listen();

        var (uart, _) = CreateUart();
        var error = Assert.Throws<IOException>(() => ConsoleSocket.Create(SocketPath, uart));
        Assert.Contains("another process", error.Message);
        using var stillThere = Connect(SocketPath);
    }

    [Fact]
    public void A_file_that_is_not_a_socket_is_refused_and_left_alone()
    {
        File.WriteAllText(SocketPath, "precious");
        var (uart, _) = CreateUart();
        var error = Assert.Throws<IOException>(() => ConsoleSocket.Create(SocketPath, uart));
        Assert.Contains("not a socket", error.Message);
        Assert.Contains(SocketPath, error.Message);
        Assert.Equal("precious", File.ReadAllText(SocketPath));
    }

    [Fact]
    public void A_directory_is_refused()
    {
        Directory.CreateDirectory(SocketPath);
        var (uart, _) = CreateUart();
        var error = Assert.Throws<IOException>(() => ConsoleSocket.Create(SocketPath, uart));
        Assert.Contains("not a socket", error.Message);
    }

    [Fact]
    public async Task WaitForFirstClient_completes_when_a_client_connects()
    {
        var (uart, _) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        var wait = console.WaitForFirstClientAsync();
        Assert.False(wait.IsCompleted);
        using var client = Connect(SocketPath);
        await wait.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(console.ClientAttached);
    }

    [Fact]
    public async Task WaitForFirstClient_is_cancelled_by_dispose()
    {
        var (uart, _) = CreateUart();
        var console = ConsoleSocket.Create(SocketPath, uart);
        var wait = console.WaitForFirstClientAsync();
        console.Dispose();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
    }

    [Fact]
    public void Output_before_any_client_is_replayed_on_first_connect()
    {
        var (uart, guest) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        guest.Out(FCR, FCR_ENABLE_FIFO);
        GuestWrite(guest, "SeaBIOS (version 1.16)\r\nBooting from Hard Disk...\r\n");
        // The guest was never held up: the transmitter is empty.
        Assert.Equal(LSR_THRE | LSR_TEMT, guest.Lsr & (LSR_THRE | LSR_TEMT));

        using var client = Connect(SocketPath);
        var expected = "SeaBIOS (version 1.16)\r\nBooting from Hard Disk...\r\n"u8.ToArray();
        Assert.Equal(expected, ReadExactly(client, expected.Length));

        GuestWrite(guest, "login: ");
        Assert.Equal("login: "u8.ToArray(), ReadExactly(client, 7));
    }

    [Fact]
    public void Two_MiB_written_without_a_client_replay_exactly_the_last_MiB()
    {
        var (uart, _) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        var output = new byte[2 * MiB];
        new Random(1234).NextBytes(output);
        for (int offset = 0; offset < output.Length; offset += 3000)
        {
            var chunk = output.AsSpan(offset, Math.Min(3000, output.Length - offset));
            Assert.Equal(chunk.Length, console.TryWrite(chunk));
        }
        Assert.Equal(MiB, console.DroppedBytes);

        using var client = Connect(SocketPath);
        Assert.Equal(output.AsSpan(MiB).ToArray(), ReadExactly(client, MiB));
        console.TryWrite("END"u8);
        Assert.Equal("END"u8.ToArray(), ReadExactly(client, 3)); // and nothing in between
    }

    [Fact]
    public void A_reconnecting_client_gets_the_output_since_the_last_one_left()
    {
        var (uart, guest) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);

        using (var first = Connect(SocketPath))
        {
            GuestWrite(guest, "one\n");
            Assert.Equal("one\n"u8.ToArray(), ReadExactly(first, 4));
        }
        WaitUntil(() => !console.ClientAttached, "the first client to be detached");
        GuestWrite(guest, "two\n");

        using var second = Connect(SocketPath);
        Assert.Equal("two\n"u8.ToArray(), ReadExactly(second, 4));
        GuestWrite(guest, "three\n");
        Assert.Equal("three\n"u8.ToArray(), ReadExactly(second, 6));
    }

    [Fact]
    public void A_second_client_is_told_the_console_is_busy_and_the_first_keeps_it()
    {
        var (uart, guest) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        using var first = Connect(SocketPath);
        WaitUntil(() => console.ClientAttached, "the first client to be attached");

        using (var second = Connect(SocketPath))
            Assert.Equal(ConsoleSocket.BusyMessage.ToArray(), ReadToEnd(second));

        GuestWrite(guest, "still yours");
        Assert.Equal("still yours"u8.ToArray(), ReadExactly(first, 11));
    }

    [Fact]
    public void Input_reaches_the_guest_byte_for_byte_including_NUL_and_0xFF()
    {
        var (uart, guest) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        guest.Out(FCR, FCR_ENABLE_FIFO | FCR_R_TRIG_10);
        using var client = Connect(SocketPath);
        // 4 KiB through a 16-byte FIFO: the console must wait for the guest, not drop.
        var input = new byte[4096];
        for (int i = 0; i < input.Length; i++)
            input[i] = (byte)(i * 131 + (i >> 8));
        input[0] = 0x00;
        input[1] = 0xFF;
        input[2] = (byte)'\r';
        input[3] = 0x03; // ^C: no line discipline
        client.Send(input);

        var received = new List<byte>(input.Length);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (received.Count < input.Length && DateTime.UtcNow < deadline)
        {
            if ((guest.Lsr & LSR_DR) != 0)
                received.Add(guest.In(RX));
            else
                Thread.Yield();
        }
        Assert.Equal(input, received.ToArray());
    }

    [Fact]
    public void Linux_driver_talks_to_a_client_through_COM1_interrupt_driven()
    {
        var irq = new RecordingIrqLine();
        var uart = new Uart16550(irq);
        var driver = new Linux8250Driver(new Guest(uart));
        Assert.Equal("16550A", driver.Autoconfig());
        driver.Startup();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        using var client = Connect(SocketPath);

        driver.Write("\r\nfedora login: "u8);
        while (irq.Level)
            driver.Interrupt();
        Assert.Equal("\r\nfedora login: "u8.ToArray(), ReadExactly(client, 16));

        byte[] typed = [.. "root\r"u8, 0x00, 0xFF, .. Enumerable.Repeat((byte)'x', 100)];
        client.Send(typed);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (driver.Received.Count < typed.Length && DateTime.UtcNow < deadline)
        {
            if (irq.Level)
                driver.Interrupt(); // the console's input thread raised the line
            else
                Thread.Yield();
        }
        Assert.Equal(typed, driver.Received.ToArray());
    }

    [Fact]
    public void A_client_that_does_not_read_never_stalls_the_guest()
    {
        var (uart, guest) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        guest.Out(FCR, FCR_ENABLE_FIFO);
        using var client = Connect(SocketPath);
        WaitUntil(() => console.ClientAttached, "the client to be attached");

        // 2 MiB through the UART while the client reads nothing: more than the socket buffers
        // and the ring together hold.
        for (int i = 0; i < 2 * MiB; i++)
        {
            guest.Out(TX, (byte)('a' + i % 26));
            Assert.Equal(LSR_THRE, guest.Lsr & LSR_THRE); // never held up
        }
        Assert.Equal(0, uart.TransmitDiscarded);
        Assert.True(console.DroppedBytes > 0);
        GuestWrite(guest, "<end>");

        // The client gets a prefix, then (after the gap) the newest output, ending with the marker.
        var received = new MemoryStream();
        var buffer = new byte[65536];
        while (!received.ToArray().AsSpan().EndsWith("<end>"u8))
            received.Write(buffer, 0, client.Receive(buffer));
        Assert.True(received.Length <= 2 * MiB + 5 - console.DroppedBytes + 3 * 65536);
    }

    [Fact]
    public void Output_allocates_nothing_per_byte()
    {
        var (uart, _) = CreateUart();
        using var console = ConsoleSocket.Create(SocketPath, uart);
        WriteBytes(uart, 20_000); // warm up: JIT, tiering

        // The runtime itself may allocate once on this thread while it tiers code up; a per-byte
        // allocation would show in every round, so the quietest of three rounds must be 0.
        long allocated = Enumerable.Range(0, 3).Min(_ => WriteBytes(uart, 100_000));

        Assert.True(allocated == 0, $"{allocated} bytes allocated for 100000 bytes of output");
    }

    // Fully optimized from the start, so no on-stack replacement compiles during the measurement.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static long WriteBytes(Uart16550 uart, int count)
    {
        Span<byte> one = stackalloc byte[1];
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < count; i++)
        {
            one[0] = (byte)i;
            uart.PortWrite(Reg.TX, one);
        }
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void Dispose_disconnects_the_client_and_removes_the_socket_file()
    {
        var (uart, guest) = CreateUart();
        var console = ConsoleSocket.Create(SocketPath, uart);
        using var client = Connect(SocketPath);
        WaitUntil(() => console.ClientAttached, "the client to be attached");

        console.Dispose();

        Assert.False(File.Exists(SocketPath));
        Assert.Empty(ReadToEnd(client));
        GuestWrite(guest, "after"); // the UART is detached: output goes nowhere, the guest runs on
        Assert.Equal(LSR_THRE, guest.Lsr & LSR_THRE);
        console.Dispose(); // idempotent
    }

    [Fact]
    public async Task Dispose_first_delivers_the_last_output_to_an_attached_client()
    {
        // The guest's last words (a panic before exit_on_reboot ends the process) are still in
        // the ring when the VMM tears down; the client must get them before it is disconnected.
        var (uart, guest) = CreateUart();
        var console = ConsoleSocket.Create(SocketPath, uart);
        using var client = Connect(SocketPath);
        WaitUntil(() => console.ClientAttached, "the client to be attached");
        guest.Out(FCR, FCR_ENABLE_FIFO);
        const int Bulk = 512 * 1024; // more than the socket buffers hold, so most waits in the ring
        for (int i = 0; i < Bulk; i++)
            guest.Out(TX, (byte)('a' + i % 26));
        GuestWrite(guest, "Kernel panic - not syncing<end>");

        var teardown = Task.Run(console.Dispose);
        byte[] received = ReadToEnd(client);
        await teardown.WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(Bulk + "Kernel panic - not syncing<end>".Length, received.Length);
        Assert.True(received.AsSpan().EndsWith("Kernel panic - not syncing<end>"u8));
        Assert.Equal(0, console.DroppedBytes);
        Assert.False(File.Exists(SocketPath));
    }

    [Fact]
    public async Task Dispose_does_not_wait_forever_for_a_client_that_does_not_read()
    {
        var (uart, guest) = CreateUart();
        var console = ConsoleSocket.Create(SocketPath, uart);
        using var client = Connect(SocketPath);
        WaitUntil(() => console.ClientAttached, "the client to be attached");
        guest.Out(FCR, FCR_ENABLE_FIFO);
        for (int i = 0; i < MiB / 2; i++)
            guest.Out(TX, (byte)i);

        // The client never reads: teardown gives up on it (after DrainMilliseconds) and ends.
        await Task.Run(console.Dispose).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(File.Exists(SocketPath));
    }

    [Fact]
    public void A_path_too_long_for_a_socket_address_is_a_clear_error()
    {
        var (uart, _) = CreateUart();
        string path = System.IO.Path.Combine(_dir.FullName, new string('a', 120));
        var error = Assert.Throws<IOException>(() => ConsoleSocket.Create(path, uart));
        Assert.Contains("too long", error.Message);
    }
}
