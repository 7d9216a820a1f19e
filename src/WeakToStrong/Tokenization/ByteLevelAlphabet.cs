namespace WeakToStrong.Tokenization;

/// <summary>
/// GPT-2's reversible map between the 256 byte values and 256 printable characters, so that byte-level BPE
/// vocabularies can be stored as text: printable Latin-1 bytes stand for themselves, the other 68 bytes
/// (controls, space, soft hyphen, ...) take the characters from U+0100 upwards in byte order.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] s_byteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> s_charToByte = BuildCharToByte(s_byteToChar);

    /// <summary>The character that stands for <paramref name="value"/>.</summary>
    public static char ToChar(byte value) => s_byteToChar[value];

    /// <summary>The byte that <paramref name="c"/> stands for, or false if it is not in the alphabet.</summary>
    public static bool TryGetByte(char c, out byte value) => s_charToByte.TryGetValue(c, out value);

    /// <summary>The text's UTF-8 bytes written as alphabet characters (the form vocabulary entries take).</summary>
    public static string Encode(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (chars, source) =>
        {
            for (var i = 0; i < source.Length; i++)
            {
                chars[i] = s_byteToChar[source[i]];
            }
        });
    }

    private static bool StandsForItself(int b) =>
        b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            map[b] = StandsForItself(b) ? (char)b : (char)next++;
        }

        return map;
    }

    private static Dictionary<char, byte> BuildCharToByte(char[] byteToChar)
    {
        var map = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++)
        {
            map[byteToChar[b]] = (byte)b;
        }

        return map;
    }
}
