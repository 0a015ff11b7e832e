Console.WriteLine("decoder");
